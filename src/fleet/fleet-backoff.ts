import { type FleetBackoffKind, fleetBackoff } from "../core/backoff.js";
import { type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountKey } from "./account.js";

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
  /** "Now" of the backoff's scripts, epoch ms. @defaultValue the Redis server's clock */
  scriptClock?: ScriptClock;
}

/** Steps of the schedule handed to the script; the last one repeats (the cap). */
const LADDER_STEPS = 16;

const HIT = RedisScript.fromFile(new URL("./scripts/backoff-hit.lua", import.meta.url));
const READ = RedisScript.fromFile(new URL("./scripts/backoff-read.lua", import.meta.url));

export class FleetBackoff {
  readonly key: string;
  private readonly schedule: (consecutive: number, kind: FleetBackoffKind) => number;
  private readonly forgetAfterMs: number;
  private readonly scriptClock: ScriptClock | undefined;

  constructor(
    private readonly redis: RedisClient,
    options: FleetBackoffOptions,
  ) {
    this.key = accountKey(options.accountId, "backoff");
    this.schedule = options.schedule ?? fleetBackoff;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
    this.scriptClock = options.scriptClock;
  }

  /**
   * Records a 429 ("rate-limited") or 455 ("maintenance") for the whole fleet. `isNew` is false
   * when the hit fell inside a backoff already running (log it once, not per worker).
   */
  async hit(kind: FleetBackoffKind): Promise<FleetBackoffState & { isNew: boolean }> {
    const ladder = Array.from({ length: LADDER_STEPS }, (_, i) =>
      Math.max(1, Math.round(this.schedule(i + 1, kind))),
    );
    const reply = (await HIT.run(
      this.redis,
      [this.key],
      [kind, this.forgetAfterMs, ...ladder],
      this.scriptClock,
    )) as [number, number, number, number, string];
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
    const [kind, consecutive, untilMs, now] = (await READ.run(
      this.redis,
      [this.key],
      [],
      this.scriptClock,
    )) as [string | null, number, number, number];
    if (kind === null || untilMs <= now) return null;
    return { kind: kind as FleetBackoffKind, consecutive, untilMs, remainingMs: untilMs - now };
  }

  /** After a successful submit: the next 429 starts again at the first step. */
  async clear(): Promise<void> {
    await this.redis.del(this.key);
  }
}
