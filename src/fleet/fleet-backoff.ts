import { type FleetBackoffKind, fleetBackoff } from "../core/backoff.js";
import { accountKey } from "./account.js";
import { LUA_NOW, type RedisClient, RedisScript } from "./redis-script.js";

/**
 * The fleet's short backoff after a 429 or 455, one per account in the hash `...:backoff`:
 * every submitter waits until `until` (Redis clock, ms). Unlike a pause it ends by itself, and
 * it grows while hits keep coming: `fleetBackoff(consecutive, kind)`.
 */

export interface FleetBackoffState {
  kind: FleetBackoffKind;
  /** Hits in a row without a success between them (1 = the first). */
  consecutive: number;
  /** End of the backoff, epoch ms on the Redis clock (machines' clocks differ: prefer remainingMs). */
  untilMs: number;
  /** Milliseconds left, measured on the Redis clock. */
  remainingMs: number;
}

export interface FleetBackoffOptions {
  accountId: string;
  /** Delay after the n-th hit in a row. @defaultValue fleetBackoff (src/core/backoff.ts) */
  schedule?: (consecutive: number, kind: FleetBackoffKind) => number;
  /** After a backoff ends, how long its count is remembered if no success clears it. @defaultValue 10 minutes */
  forgetAfterMs?: number;
}

/** Steps of the schedule handed to the script; the last one repeats (the cap). */
const LADDER_STEPS = 16;

/*
 * KEYS[1] backoff hash. ARGV[1] kind, ARGV[2] forgetAfterMs, ARGV[3..] delay of hit 1, 2, ...
 * A hit while a backoff of the same kind runs belongs to the same burst (every in-flight submit
 * meets the same 429) and changes nothing; one after it ended counts as the next in a row. A
 * hit of the other kind takes over only if it ends later: a backoff is never shortened.
 * Returns {isNew, consecutive, until, now, kind in force}.
 */
const HIT = new RedisScript(`${LUA_NOW}
local now = now_ms()
local h = redis.call('HMGET', KEYS[1], 'kind', 'consecutive', 'until')
local n = tonumber(h[2]) or 0
local untilMs = tonumber(h[3]) or 0
local steps = #ARGV - 2
if untilMs > now then
  if h[1] == ARGV[1] or now + tonumber(ARGV[3]) <= untilMs then
    return {0, n, untilMs, now, h[1]}
  end
end
if h[1] ~= ARGV[1] then n = 0 end
n = n + 1
local nextUntil = math.max(untilMs, now + tonumber(ARGV[2 + math.min(n, steps)]))
redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'consecutive', n, 'until', nextUntil)
redis.call('PEXPIRE', KEYS[1], nextUntil - now + tonumber(ARGV[2]))
return {1, n, nextUntil, now, ARGV[1]}
`);

/* KEYS[1] backoff hash. Returns {kind|false, consecutive, until, now}. */
const READ = new RedisScript(`${LUA_NOW}
local h = redis.call('HMGET', KEYS[1], 'kind', 'consecutive', 'until')
return {h[1], tonumber(h[2]) or 0, tonumber(h[3]) or 0, now_ms()}
`);

export class FleetBackoff {
  readonly key: string;
  private readonly schedule: (consecutive: number, kind: FleetBackoffKind) => number;
  private readonly forgetAfterMs: number;

  constructor(
    private readonly redis: RedisClient,
    options: FleetBackoffOptions,
  ) {
    this.key = accountKey(options.accountId, "backoff");
    this.schedule = options.schedule ?? fleetBackoff;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
  }

  /**
   * Records a 429 ("rate-limited") or 455 ("maintenance") for the whole fleet. `isNew` is false
   * when the hit fell inside a backoff already running (log it once, not per worker).
   */
  async hit(kind: FleetBackoffKind): Promise<FleetBackoffState & { isNew: boolean }> {
    const ladder = Array.from({ length: LADDER_STEPS }, (_, i) =>
      Math.max(1, Math.round(this.schedule(i + 1, kind))),
    );
    const reply = (await HIT.run(this.redis, [this.key], [kind, this.forgetAfterMs, ...ladder])) as [
      number,
      number,
      number,
      number,
      string,
    ];
    const [isNew, consecutive, untilMs, now, inForce] = reply;
    return {
      // A hit inside a running backoff of the other kind reports that backoff.
      kind: inForce as FleetBackoffKind,
      consecutive,
      untilMs,
      remainingMs: Math.max(0, untilMs - now),
      isNew: isNew === 1,
    };
  }

  /** Milliseconds every submitter should still wait; 0 when no backoff runs. */
  async remaining(): Promise<number> {
    return (await this.get())?.remainingMs ?? 0;
  }

  /** The running backoff, or null. */
  async get(): Promise<FleetBackoffState | null> {
    const [kind, consecutive, untilMs, now] = (await READ.run(this.redis, [this.key], [])) as [
      string | null,
      number,
      number,
      number,
    ];
    if (kind === null || untilMs <= now) return null;
    return { kind: kind as FleetBackoffKind, consecutive, untilMs, remainingMs: untilMs - now };
  }

  /** After a successful submit: the next 429 starts again at the first step. */
  async clear(): Promise<void> {
    await this.redis.del(this.key);
  }
}
