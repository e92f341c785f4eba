/**
 * Every Redis connection of the product comes from `connectRedis`, and every "does Redis answer?"
 * question goes through one probe (`answered`): commands fail fast, workers wait through
 * reconnects, and the demo and the test setup ask with a one-shot client.
 */
import { Redis } from "ioredis";
import type { Config } from "../config/index.js";
import { redactUrl, scrubUrlSecrets } from "../core/redact-url.js";

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
}

/** An ioredis client fit for BullMQ and the ledger. The caller owns it and must `quit()` it. */
export function connectRedis(url: string, options: ConnectRedisOptions = {}): Redis {
  const oneShot = options.oneShotTimeoutMs;
  const client = new Redis(url, {
    lazyConnect: options.lazy ?? false,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? null : options.maxRetriesPerRequest,
    // Reconnect forever with a capped, growing delay: Redis restarts must not kill workers.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
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
  // Without a listener ioredis prints every reconnect error to stderr as "Unhandled error event".
  client.on("error", options.onError ?? (() => {}));
  return client;
}

/** Redis did not answer: commands exit 1 with this message, naming the URL without its password. */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
  constructor(url: string, reason: string) {
    super(
      `Redis is not answering at ${redactUrl(url)} (${scrubUrlSecrets(reason, url)}). Start one (e.g. \`redis-server\`, or \`docker compose up -d redis\`) or set REDIS_URL.`,
    );
  }
}

/**
 * The probe: resolves once `client` has connected and answered PING (a server still loading its
 * data answers LOADING errors until it is done); rejects after `timeoutMs`. On failure the caller
 * drops the client.
 */
async function answered(client: Redis, timeoutMs: number): Promise<void> {
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
  config: Pick<Config, "REDIS_URL" | "REDIS_CONNECT_TIMEOUT">,
  options: { forWorker?: boolean; timeoutMs?: number } = {},
): Promise<Redis> {
  const redis = connectRedis(config.REDIS_URL, {
    lazy: true,
    maxRetriesPerRequest: options.forWorker ? null : 1,
    connectionName: "kie-batch",
  });
  try {
    await answered(redis, options.timeoutMs ?? config.REDIS_CONNECT_TIMEOUT);
  } catch (error) {
    redis.disconnect();
    throw new RedisUnavailableError(config.REDIS_URL, reasonOf(error));
  }
  return redis;
}

/** How long a one-shot probe waits when the caller names no timeout. */
const PROBE_TIMEOUT_MS = 3_000;

/**
 * Resolves when Redis at `url` answers PING; rejects within `timeoutMs` with
 * `Redis is not answering at <url without password>: <reason>`. Makes one attempt, no reconnect loop.
 */
export async function pingRedis(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const client = connectRedis(url, { lazy: true, maxRetriesPerRequest: 0, oneShotTimeoutMs: timeoutMs });
  try {
    await answered(client, timeoutMs);
  } catch (err) {
    // Belt and braces: no reason text may carry the password, whatever the driver put in it.
    throw new Error(`Redis is not answering at ${redactUrl(url)}: ${scrubUrlSecrets(reasonOf(err), url)}`, {
      cause: err,
    });
  } finally {
    client.disconnect();
  }
}

/** True when something at `url` answers PING now (one try, no reconnects). */
export function redisAnswers(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return pingRedis(url, timeoutMs).then(
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
export function droppedConnection(error: unknown, url: string): RedisUnavailableError | undefined {
  if (error instanceof RedisUnavailableError) return error;
  if (
    error instanceof Error &&
    (error.name === "MaxRetriesPerRequestError" || /ECONNREFUSED|Connection is closed/.test(error.message))
  ) {
    return new RedisUnavailableError(url, error.message);
  }
  return undefined;
}
