/**
 * Where Redis is: one server at REDIS_URL, or a Redis Cluster at REDIS_CLUSTER_NODES (which wins
 * when set). How each is named in messages, without its password.
 */
import type { Config } from "../config/index.js";
import { parseClusterNodes } from "../config/redis-nodes.js";
import { redactUrl, scrubUrlSecrets } from "../core/redact-url.js";

export type RedisEndpoint =
  | { kind: "single"; url: string; password?: string }
  | { kind: "cluster"; nodes: string; password?: string };

/** A URL is a single Redis (what the tests and the demo pass); an endpoint says which. */
export type RedisTarget = string | RedisEndpoint;

export function redisEndpoint(
  config: Pick<Config, "REDIS_URL" | "REDIS_CLUSTER_NODES" | "REDIS_PASSWORD">,
): RedisEndpoint {
  const password = config.REDIS_PASSWORD === undefined ? {} : { password: config.REDIS_PASSWORD };
  return config.REDIS_CLUSTER_NODES
    ? { kind: "cluster", nodes: config.REDIS_CLUSTER_NODES, ...password }
    : { kind: "single", url: config.REDIS_URL, ...password };
}

export function endpointOf(target: RedisTarget): RedisEndpoint {
  return typeof target === "string" ? { kind: "single", url: target } : target;
}

/** `redis://host:port` or `the Redis Cluster at host:port,host:port`, passwords masked. */
export function describeEndpoint(target: RedisTarget): string {
  const endpoint = endpointOf(target);
  if (endpoint.kind === "single") return redactUrl(endpoint.url);
  const nodes = parseClusterNodes(endpoint.nodes).nodes.map(({ host, port }) =>
    host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
  );
  return `the Redis Cluster at ${nodes.join(",")}`;
}

/** `text` without any password the endpoint carries (a driver's error may quote one). */
export function scrubEndpoint(text: string, target: RedisTarget): string {
  const endpoint = endpointOf(target);
  const urls = endpoint.kind === "single" ? [endpoint.url] : endpoint.nodes.split(",").map((n) => n.trim());
  let out = urls.reduce((acc, url) => scrubUrlSecrets(acc, url), text);
  if (endpoint.password && endpoint.password.length >= 3) out = out.split(endpoint.password).join("***");
  return out;
}

/** What to set when nothing answers there. */
export function endpointHint(target: RedisTarget): string {
  return endpointOf(target).kind === "cluster"
    ? "Check REDIS_CLUSTER_NODES (any reachable node of the cluster will do) and that the cluster is up (`redis-cli -c -p <port> cluster info`)."
    : "Start one (e.g. `redis-server`, or `docker compose up -d redis`) or set REDIS_URL.";
}
