import { Redis } from "ioredis";

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
}

/** An ioredis client fit for BullMQ and the ledger. The caller owns it and must `quit()` it. */
export function connectRedis(url: string, options: ConnectRedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: options.lazy ?? false,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? null : options.maxRetriesPerRequest,
    // Reconnect forever with a capped, growing delay: Redis restarts must not kill workers.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
  });
  // Without a listener ioredis prints every reconnect error to stderr as "Unhandled error event".
  client.on("error", options.onError ?? (() => {}));
  return client;
}

const SECRET_PARAM = /pass|secret|token|auth/i;

/**
 * The URL with its password (and any password-like query parameter) replaced by `***`, for
 * messages and logs. Unparseable input has anything between `//` and `@` masked.
 */
export function redactRedisUrl(url: string): string {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  try {
    const parsed = new URL(hasScheme ? url : `redis://${url}`);
    if (parsed.password) parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAM.test(key)) parsed.searchParams.set(key, "***");
    }
    const text = parsed.toString();
    return hasScheme ? text : text.slice("redis://".length);
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/**
 * Resolves when Redis at `url` answers PING; rejects within `timeoutMs` with
 * `Redis is not answering at <url without password>: <reason>`. Makes one attempt, no reconnect loop.
 */
export async function pingRedis(url: string, timeoutMs = 3_000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    // After a timeout, a server that never reads would hold the half-closed socket (and so the
    // process) for ioredis's default 2 s before it is destroyed.
    disconnectTimeout: 100,
  });
  client.on("error", () => {});
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect().then(() => client.ping()), deadline]);
  } catch (err) {
    const reason = err instanceof Error ? err.message || err.name : String(err);
    throw new Error(`Redis is not answering at ${redactRedisUrl(url)}: ${scrub(reason, url)}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** Belt and braces: no reason text may carry the password, whatever the driver put in it. */
function scrub(text: string, url: string): string {
  let password = "";
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // Unparseable URL: ioredis could not have used a password from it either.
  }
  return password.length >= 3 ? text.split(password).join("***") : text;
}
