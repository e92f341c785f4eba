/**
 * Every Redis connection of the product comes from `connectRedis`, and every "does Redis answer?"
 * question goes through one probe (`answered`): commands fail fast, workers wait through
 * reconnects, and the demo and the test setup ask with a one-shot client. A single Redis
 * (REDIS_URL) gets an ioredis `Redis`, a Redis Cluster (REDIS_CLUSTER_NODES) an ioredis `Cluster`.
 */
import { Cluster, Redis } from "ioredis";
import type { Config } from "../config/index.js";
import { parseClusterNodes } from "../config/redis-nodes.js";
import { redactUrl } from "../core/redact-url.js";
import type { RedisClient } from "../redis/script.js";
import {
  describeEndpoint,
  endpointHint,
  endpointOf,
  type RedisEndpoint,
  type RedisTarget,
  redisEndpoint,
  scrubEndpoint,
} from "./redis-endpoint.js";

export interface ConnectRedisOptions {
  /** Connect on the first command instead of at once. @defaultValue false */
  lazy?: boolean;
  /**
   * `null` makes commands wait through reconnects, which BullMQ requires of a Worker's connection
   * (a worker must ride out a Redis restart). A number fails a command after that many reconnect
   * attempts: what a short-lived CLI command wants. @defaultValue null
   */
  maxRetriesPerRequest?: number | null;
  /**
   * Connection errors: ioredis emits one per failed reconnect attempt while it keeps retrying.
   * @defaultValue ignored (commands still fail or wait according to `maxRetriesPerRequest`)
   */
  onError?: (err: Error) => void;
  /** Shown by CLIENT LIST, for operators. */
  connectionName?: string;
  /**
   * A probe's client: one connection attempt within this many ms, no reconnects, no offline queue.
   * @defaultValue unset (a long-lived client that reconnects forever)
   */
  oneShotTimeoutMs?: number;
  /**
   * On a Cluster, a command cut by a failover is tried again for about 2 s (ioredis's defaults)
   * instead of `CLUSTER_REDIRECTIONS` seconds: for the stage workers' own connection, whose
   * blocking fetch must come back to BullMQ's recovery soon rather than be held through the
   * failover (held, workers sometimes fetched nothing more from a queue whose master died: 1 run
   * in ~5 of test/e2e/cluster-worker's batch, 1 in ~15 with this). Ledger and queue writes keep
   * the long retry: with ioredis's short one, 2 runs in 6 paid a row twice.
   *
   * It also has no ready check. BullMQ resets a worker's blocking connection (a duplicate of this
   * one, same options) after a fetch that outlived its deadline, and awaits `Cluster.connect()`;
   * ioredis 5 never settles that promise when the ready check (CLUSTER INFO) fails, as it does
   * right after a failover (cluster_state:fail on a node that has not yet heard of the new
   * master): the Cluster reconnects by itself but BullMQ's fetch waits forever, so the worker took
   * no job from that queue again (3 runs in 8 of test/e2e/cluster-worker with the queue's
   * master killed). Without the check a node still in `fail` answers CLUSTERDOWN, retried like
   * any failover error. @defaultValue false
   */
  shortFailover?: boolean;
}

/** Reconnect forever with a capped, growing delay: Redis restarts must not kill workers. */
const reconnectDelay = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5_000);

/**
 * A Cluster command that finds its node gone (a master killed) is tried again every this many ms,
 * up to `CLUSTER_REDIRECTIONS` times: long enough for a replica to take over (the cluster's
 * cluster-node-timeout, 15 s by default, plus an election), so a worker's write waits through a
 * failover instead of failing. Commands still fail after that.
 */
const CLUSTER_FAILOVER_RETRY_MS = 1_000;
const CLUSTER_REDIRECTIONS = 30;

/** An ioredis client fit for BullMQ and the ledger. The caller owns it and must `quit()` it. */
export function connectRedis(url: string, options?: ConnectRedisOptions): Redis;
export function connectRedis(target: RedisTarget, options?: ConnectRedisOptions): RedisClient;
export function connectRedis(target: RedisTarget, options: ConnectRedisOptions = {}): RedisClient {
  const endpoint = endpointOf(target);
  const client =
    endpoint.kind === "cluster" ? connectCluster(endpoint, options) : connectSingle(endpoint, options);
  // Without a listener ioredis prints every reconnect error to stderr as "Unhandled error event".
  client.on("error", options.onError ?? (() => {}));
  return client;
}

function connectSingle(
  endpoint: Extract<RedisEndpoint, { kind: "single" }>,
  options: ConnectRedisOptions,
): Redis {
  const oneShot = options.oneShotTimeoutMs;
  return new Redis(endpoint.url, {
    ...(endpoint.password === undefined || new URL(endpoint.url).password
      ? {}
      : { password: endpoint.password }),
    lazyConnect: options.lazy ?? false,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? null : options.maxRetriesPerRequest,
    retryStrategy: reconnectDelay,
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
    ...(oneShot === undefined
      ? {}
      : {
          enableOfflineQueue: false,
          retryStrategy: () => null,
          connectTimeout: oneShot,
          // After a timeout, a server that never reads would hold the half-closed socket (and so
          // the process) for ioredis's default 2 s before it is destroyed.
          disconnectTimeout: 100,
        }),
  });
}

/**
 * An ioredis Cluster over the seed nodes. Reads go to masters (`scaleReads`): the ledger reads its
 * own writes, which a replica may not have yet. BullMQ requires `maxRetriesPerRequest: null` of a
 * worker's node connections, and takes the Cluster as its connection (its keys share a hash tag).
 */
function connectCluster(
  endpoint: Extract<RedisEndpoint, { kind: "cluster" }>,
  options: ConnectRedisOptions,
): Cluster {
  const seeds = parseClusterNodes(endpoint.nodes);
  const oneShot = options.oneShotTimeoutMs;
  const password = seeds.password ?? endpoint.password;
  return new Cluster(seeds.nodes, {
    lazyConnect: options.lazy ?? false,
    enableReadyCheck: !options.shortFailover,
    scaleReads: "master",
    ...(options.shortFailover
      ? {}
      : {
          retryDelayOnFailover: CLUSTER_FAILOVER_RETRY_MS,
          retryDelayOnClusterDown: CLUSTER_FAILOVER_RETRY_MS,
          maxRedirections: CLUSTER_REDIRECTIONS,
        }),
    clusterRetryStrategy: oneShot === undefined ? reconnectDelay : () => null,
    enableOfflineQueue: oneShot === undefined,
    // With TLS, nodes are connected to by the names given (as ioredis advises for managed
    // clusters), so each certificate is checked against the name it was issued for.
    ...(seeds.tls
      ? { dnsLookup: (address: string, done: (e: null, a: string) => void) => done(null, address) }
      : {}),
    redisOptions: {
      maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? null : options.maxRetriesPerRequest,
      ...(options.connectionName ? { connectionName: options.connectionName } : {}),
      ...(seeds.username === undefined ? {} : { username: seeds.username }),
      ...(password === undefined ? {} : { password }),
      ...(seeds.tls ? { tls: {} } : {}),
      ...(oneShot === undefined ? {} : { connectTimeout: oneShot, disconnectTimeout: 100 }),
    },
  });
}

/** Redis did not answer: commands exit 1 with this message, naming the URL without its password. */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
  constructor(target: RedisTarget, reason: string) {
    super(
      `Redis is not answering at ${describeEndpoint(target)} (${scrubEndpoint(reason, target)}). ${endpointHint(target)}`,
    );
  }
}

/**
 * The probe: resolves once `client` has connected and answered PING (a server still loading its
 * data answers LOADING errors until it is done); rejects after `timeoutMs`. On failure the caller
 * drops the client.
 */
async function answered(client: RedisClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect().then(() => client.ping()), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

/**
 * A Redis connection that has answered a PING. `forWorker` connections wait through reconnects
 * (BullMQ needs that); command connections fail fast instead of hanging.
 * @throws RedisUnavailableError when no answer came within `timeoutMs` (REDIS_CONNECT_TIMEOUT)
 */
export async function openRedis(
  config: Pick<Config, "REDIS_URL" | "REDIS_CLUSTER_NODES" | "REDIS_PASSWORD" | "REDIS_CONNECT_TIMEOUT">,
  options: { forWorker?: boolean; timeoutMs?: number; shortFailover?: boolean } = {},
): Promise<RedisClient> {
  const endpoint = redisEndpoint(config);
  const redis = connectRedis(endpoint, {
    ...(options.shortFailover ? { shortFailover: true } : {}),
    lazy: true,
    maxRetriesPerRequest: options.forWorker ? null : 1,
    connectionName: "kie-batch",
  });
  try {
    await answered(redis, options.timeoutMs ?? config.REDIS_CONNECT_TIMEOUT);
  } catch (error) {
    redis.disconnect();
    throw new RedisUnavailableError(endpoint, reasonOf(error));
  }
  return redis;
}

/** How long a one-shot probe waits when the caller names no timeout. */
const PROBE_TIMEOUT_MS = 3_000;

/**
 * Resolves when Redis at `url` answers PING; rejects within `timeoutMs` with
 * `Redis is not answering at <url without password>: <reason>`. Makes one attempt, no reconnect loop.
 */
export async function pingRedis(target: RedisTarget, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const client = connectRedis(target, { lazy: true, maxRetriesPerRequest: 0, oneShotTimeoutMs: timeoutMs });
  try {
    await answered(client, timeoutMs);
  } catch (err) {
    // Belt and braces: no reason text may carry the password, whatever the driver put in it.
    throw new Error(
      `Redis is not answering at ${describeEndpoint(target)}: ${scrubEndpoint(reasonOf(err), target)}`,
      { cause: err },
    );
  } finally {
    client.disconnect();
  }
}

/** True when something at `url` answers PING now (one try, no reconnects). */
export function redisAnswers(target: RedisTarget, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return pingRedis(target, timeoutMs).then(
    () => true,
    () => false,
  );
}

/**
 * Resolves once `url` answers PING; rejects after `timeoutMs`, or as soon as `alive` throws (the
 * server process died: no point waiting).
 */
export async function waitForRedis(
  url: string,
  options: { timeoutMs: number; alive?: () => void },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.alive?.();
    if (await redisAnswers(url, Math.min(PROBE_TIMEOUT_MS, options.timeoutMs))) return;
    if (Date.now() > deadline)
      throw new Error(`redis-server did not answer at ${redactUrl(url)} within ${options.timeoutMs} ms`);
    // A server process starting up: ask again shortly (it has no event to wait for).
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The RedisUnavailableError for an error that means the connection dropped after the first PING
 * (as clear as a Redis that never answered); undefined for any other error.
 */
export function droppedConnection(error: unknown, target: RedisTarget): RedisUnavailableError | undefined {
  if (error instanceof RedisUnavailableError) return error;
  if (
    error instanceof Error &&
    (error.name === "MaxRetriesPerRequestError" ||
      /ECONNREFUSED|Connection is closed|Too many Cluster redirections|Failed to refresh slots cache|CLUSTERDOWN/.test(
        error.message,
      ))
  ) {
    return new RedisUnavailableError(target, error.message);
  }
  return undefined;
}
