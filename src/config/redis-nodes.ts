import { ValueError } from "../core/errors.js";

/** A Redis Cluster's seed nodes and what every connection to its nodes uses. */
export interface ClusterSeeds {
  nodes: { host: string; port: number }[];
  /** From the first node given as a URL with credentials (`redis://user:pass@host:port`). */
  username?: string;
  password?: string;
  /** Any node given as `rediss://...`: TLS to every node. */
  tls: boolean;
}

const SCHEME = /^rediss?:\/\//i;

/**
 * REDIS_CLUSTER_NODES: comma-separated seed nodes, each `host:port` or a `redis://` / `rediss://`
 * URL as REDIS_URL takes it (credentials and TLS then apply to every node of the cluster).
 * @throws ValueError for an empty list, a node without a port, or another scheme
 */
export function parseClusterNodes(text: string): ClusterSeeds {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw bad("an empty list");
  const seeds: ClusterSeeds = { nodes: [], tls: false };
  for (const entry of entries) {
    let url: URL;
    try {
      url = new URL(SCHEME.test(entry) ? entry : `redis://${entry}`);
    } catch {
      throw bad("a node that is not host:port");
    }
    if (!/^rediss?:$/.test(url.protocol)) throw bad("a node that is not host:port");
    const port = Number(url.port);
    if (!url.hostname || !Number.isInteger(port) || port < 1) throw bad("a node without a port");
    seeds.nodes.push({ host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port });
    if (url.protocol === "rediss:") seeds.tls = true;
    if (seeds.password === undefined && url.password) {
      seeds.password = decodeURIComponent(url.password);
      if (url.username) seeds.username = decodeURIComponent(url.username);
    }
  }
  return seeds;
}

/** The value as the schema keeps it: checked, unchanged (it may carry a password: never print it). */
export function checkClusterNodes(text: string): string {
  parseClusterNodes(text);
  return text.trim();
}

function bad(found: string): ValueError {
  // The value itself is not quoted: a node URL may carry the password.
  return new ValueError("", `expected comma-separated host:port seed nodes of a Redis Cluster, got ${found}`);
}
