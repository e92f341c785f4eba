import { accountKey } from "./account.js";
import { LUA_NOW, type RedisClient, RedisScript } from "./redis-script.js";

/**
 * KIE_MAX_IN_FLIGHT: how many tasks of one account generate at once, fleet-wide. A sorted set of
 * job keys scored by when their slot was taken or last touched (Redis clock, ms).
 *
 * Protocol: a submit takes a slot (keyed by the row's job key) BEFORE the create request, so the
 * cap holds even while requests are on the wire; the poll stage touches it on each status call
 * and releases it when the task leaves "generating" (success, failure, give-up).
 */

/** A slot untouched this long belongs to a job that is gone; it is dropped, not leaked forever. */
export const DEFAULT_IN_FLIGHT_STALE_MS = 60 * 60_000;

export interface InFlightOptions {
  /** `accountId(apiKey)`. */
  accountId: string;
  /**
   * Age after which an untouched slot is dropped. Must exceed the longest gap between touches
   * (the poll backoff cap, 60 s) with room to spare; it also expires an idle account's set.
   * @defaultValue DEFAULT_IN_FLIGHT_STALE_MS (1 hour)
   */
  staleAfterMs?: number;
}

/*
 * KEYS[1] in-flight zset. ARGV[1] job key, ARGV[2] max (0 = no cap), ARGV[3] staleAfterMs.
 * Returns 1 when the job holds a slot afterwards (taken now, or already held), else 0.
 */
const TRY_ACQUIRE = new RedisScript(`${LUA_NOW}
local now = now_ms()
local stale = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - stale)
local max = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and max > 0 and redis.call('ZCARD', KEYS[1]) >= max then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], stale)
return 1
`);

/* KEYS[1] in-flight zset. ARGV[1] job key, ARGV[2] staleAfterMs. Returns 1 if the slot was held. */
const TOUCH = new RedisScript(`${LUA_NOW}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
redis.call('ZADD', KEYS[1], now_ms(), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/* KEYS[1] in-flight zset. ARGV[1] staleAfterMs. Drops stale slots, returns how many remain. */
const COUNT = new RedisScript(`${LUA_NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms() - tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
`);

export class InFlight {
  private readonly key: string;
  readonly staleAfterMs: number;

  constructor(
    private readonly redis: RedisClient,
    options: InFlightOptions,
  ) {
    this.key = accountKey(options.accountId, "in-flight");
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_IN_FLIGHT_STALE_MS;
    if (!Number.isSafeInteger(this.staleAfterMs) || this.staleAfterMs < 1) {
      throw new RangeError("InFlight: staleAfterMs must be an integer >= 1");
    }
  }

  /**
   * Takes a slot for `jobKey` if fewer than `max` are held (0 = no cap: always true, still
   * counted for status). Idempotent: a job that already holds a slot keeps it and gets true, so
   * a retried submit never needs a second slot.
   */
  async tryAcquire(jobKey: string, max: number): Promise<boolean> {
    if (!Number.isSafeInteger(max) || max < 0)
      throw new RangeError("tryAcquire: max must be an integer >= 0");
    const reply = await TRY_ACQUIRE.run(this.redis, [this.key], [jobKey, max, this.staleAfterMs]);
    return reply === 1;
  }

  /** Marks the slot as alive (each status check); false when the job holds none. */
  async touch(jobKey: string): Promise<boolean> {
    return (await TOUCH.run(this.redis, [this.key], [jobKey, this.staleAfterMs])) === 1;
  }

  /** Frees the slot; false when the job held none (released before, or dropped as stale). */
  async release(jobKey: string): Promise<boolean> {
    return (await this.redis.zrem(this.key, jobKey)) === 1;
  }

  /** Slots held now, stale ones excluded. */
  async count(): Promise<number> {
    return Number(await COUNT.run(this.redis, [this.key], [this.staleAfterMs]));
  }
}
