import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../core/clock.js";
import { accountKey } from "./account.js";
import { hashFromReply, LUA_NOW, type RedisClient, RedisScript } from "./redis-script.js";

/** At most `limit` admissions in any sliding window of `windowMs`. */
export interface RateConfig {
  limit: number;
  windowMs: number;
}

/** The account's create limit as KIE documents it: 20 per 10 s, sliding. */
export const DEFAULT_CREATE_RATE: RateConfig = { limit: 20, windowMs: 10_000 };

export type AcquireResult =
  /** Admitted at `serverTimeUs` (the Redis clock, microseconds): a slot of the window is taken. */
  | { ok: true; serverTimeUs: number }
  /** Refused: no slot frees before `retryInMs` (a duration, so no machine clock is involved). */
  | { ok: false; retryInMs: number; serverTimeUs: number };

export interface SlidingWindowLimiterOptions {
  /** `accountId(apiKey)`: every process and queue prefix on one key shares the window. */
  accountId: string;
  /** Names the window's keys, e.g. "create" or "poll". */
  name: string;
  /** The rate; with `shared`, only until a value has been configured in Redis. */
  rate: RateConfig;
  /**
   * Read limit and window inside the script from the account's `rate-config:<name>` hash, one
   * value for every worker of the key (written by `configureRate`).
   * @defaultValue false
   */
  shared?: boolean;
  /** Sleeps of `waitForSlot`. @defaultValue systemClock */
  clock?: Clock;
  /**
   * Each admission holds its slot this much longer than the window. The API counts a request
   * when it arrives, and the time from admission to arrival varies (a new connection, a busy
   * event loop, the network): without a margin, a request admitted just as a slot freed can reach
   * the API sooner after an earlier one than the window, and be refused with a 429.
   * @defaultValue 0
   */
  marginMs?: number;
}

/** The create limiter's margin: what arrival jitter it absorbs, at 2.5% of a 10 s window. */
export const CREATE_MARGIN_MS = 250;

/*
 * One atomic step over a sorted set of admissions scored by the Redis clock (microseconds).
 * KEYS[1] window zset; KEYS[2] (optional) config hash {limit, windowMs}
 * ARGV[1] limit and ARGV[2] windowMs (used when there is no config hash, or it is empty)
 * ARGV[3] a unique member for this admission; ARGV[4] margin in ms, added to the window
 * An entry admitted at t counts in (t - window, t]: it leaves when now >= t + window, so any
 * half-open window [a, a + window) holds at most `limit` admissions.
 * Returns {1, nowUs} or {0, nowUs, retryInMs}.
 */
const ACQUIRE = new RedisScript(`${LUA_NOW}
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
if KEYS[2] then
  local cfg = redis.call('HMGET', KEYS[2], 'limit', 'windowMs')
  -- A value that is not a number (hand-edited) leaves the caller's rate in force.
  limit = tonumber(cfg[1]) or limit
  windowMs = tonumber(cfg[2]) or windowMs
end
windowMs = windowMs + (tonumber(ARGV[4]) or 0)
local now = now_us()
local windowUs = windowMs * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowUs)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], windowMs)
  return {1, now}
end
-- After a limit was lowered more than one entry may have to leave: the one that frees a slot
-- is at index count - limit (0-based, oldest first).
local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
local retryUs = tonumber(entry[2]) + windowUs - now
return {0, now, math.max(1, math.ceil(retryUs / 1000))}
`);

/* KEYS[1] config hash; ARGV limit, windowMs. Returns the previous HGETALL. */
const CONFIGURE = new RedisScript(`
local previous = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], 'limit', ARGV[1], 'windowMs', ARGV[2])
return previous
`);

function checkRate(rate: RateConfig, what: string): RateConfig {
  const { limit, windowMs } = rate;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`${what}: limit must be an integer >= 1`);
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
    throw new RangeError(`${what}: windowMs must be an integer >= 1`);
  }
  return { limit, windowMs };
}

function rateFromHash(hash: Record<string, string>): RateConfig | undefined {
  const limit = Number(hash.limit);
  const windowMs = Number(hash.windowMs);
  return Number.isSafeInteger(limit) && Number.isSafeInteger(windowMs) ? { limit, windowMs } : undefined;
}

/**
 * A sliding-window limiter in Redis, shared by every process that uses the same account and
 * name. Unlike a fixed window it never lets 2x the limit through around a window boundary.
 */
export class SlidingWindowLimiter {
  readonly name: string;
  private readonly windowKey: string;
  private readonly configKey: string | undefined;
  private readonly rate: RateConfig;
  private readonly clock: Clock;
  private readonly marginMs: number;
  /** Members must be unique across the fleet: two admissions in one microsecond both count. */
  private readonly memberPrefix = randomUUID();
  private sequence = 0;

  constructor(
    private readonly redis: RedisClient,
    options: SlidingWindowLimiterOptions,
  ) {
    this.name = options.name;
    this.rate = checkRate(options.rate, `limiter "${options.name}"`);
    this.windowKey = accountKey(options.accountId, `rate:${options.name}`);
    this.configKey = options.shared
      ? accountKey(options.accountId, `rate-config:${options.name}`)
      : undefined;
    this.clock = options.clock ?? systemClock;
    this.marginMs = Math.max(0, Math.round(options.marginMs ?? 0));
  }

  /** Takes a slot if the window has one; otherwise says how long until one frees. */
  async acquire(): Promise<AcquireResult> {
    const keys = this.configKey ? [this.windowKey, this.configKey] : [this.windowKey];
    this.sequence += 1;
    const member = `${this.memberPrefix}:${this.sequence}`;
    const reply = (await ACQUIRE.run(this.redis, keys, [
      this.rate.limit,
      this.rate.windowMs,
      member,
      this.marginMs,
    ])) as number[];
    const [admitted, serverTimeUs, retryInMs] = reply;
    if (admitted === 1) return { ok: true, serverTimeUs: Number(serverTimeUs) };
    return { ok: false, retryInMs: Number(retryInMs), serverTimeUs: Number(serverTimeUs) };
  }

  /**
   * Acquires, sleeping `retryInMs` between tries, until admitted; rejects with the signal's
   * reason on abort. Waiters are not served in order: whoever asks first after a slot frees wins.
   */
  async waitForSlot(signal?: AbortSignal, clock: Clock = this.clock): Promise<{ serverTimeUs: number }> {
    for (;;) {
      signal?.throwIfAborted();
      const result = await this.acquire();
      if (result.ok) return { serverTimeUs: result.serverTimeUs };
      await clock.sleep(result.retryInMs, signal);
    }
  }

  /**
   * Sets the fleet's value (shared limiters only). `previous` is what Redis held (undefined the
   * first time); `changed` is true when that differs, so the caller logs
   * "rate limit changed from X to Y" exactly when a worker's setting replaced another.
   */
  async configureRate(limit: number, windowMs: number): Promise<{ previous?: RateConfig; changed: boolean }> {
    if (!this.configKey) throw new Error(`limiter "${this.name}" has a fixed rate; it is not configurable`);
    const rate = checkRate({ limit, windowMs }, "configureRate");
    const reply = await CONFIGURE.run(this.redis, [this.configKey], [rate.limit, rate.windowMs]);
    const previous = rateFromHash(hashFromReply(reply));
    const changed = previous?.limit !== rate.limit || previous.windowMs !== rate.windowMs;
    return previous ? { previous, changed } : { changed };
  }

  /** The rate in force: the fleet's value in Redis for a shared limiter, else the fixed one. */
  async currentRate(): Promise<RateConfig> {
    if (!this.configKey) return { ...this.rate };
    return rateFromHash(await this.redis.hgetall(this.configKey)) ?? { ...this.rate };
  }
}
