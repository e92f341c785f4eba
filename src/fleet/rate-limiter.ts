import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../core/clock.js";
import { hashFromReply, type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountKey } from "./account.js";
import { parsePauseState } from "./pause.js";
import type { SubmitGate } from "./submit-gate.js";

/** At most `limit` admissions in any sliding window of `windowMs`. */
export interface RateConfig {
  limit: number;
  windowMs: number;
}

/** The account's create limit as KIE documents it: 20 per 10 s, sliding. */
export const DEFAULT_CREATE_RATE: RateConfig = { limit: 20, windowMs: 10_000 };

export type AcquireResult =
  /**
   * Admitted at `serverTimeUs` (the Redis clock, microseconds): a slot of the window is taken,
   * named `member` (for `restamp`).
   */
  | { ok: true; serverTimeUs: number; member: string; gate?: SubmitGate }
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
   * "Now" of the window, epoch ms (admissions are scored and expired on it). Give it together
   * with a `clock` whose sleeps advance it. @defaultValue the Redis server's clock
   */
  scriptClock?: ScriptClock;
  /**
   * Each admission holds its slot this much longer than the window: a fixed number of ms, or a
   * rule scaled to the window in force. The API counts a request when it arrives, and the time
   * from admission to arrival varies (a new connection, a busy event loop, the network): without
   * a margin, a request admitted just as a slot freed can reach the API sooner after an earlier
   * one than the window, and be refused with a 429.
   * @defaultValue 0
   */
  marginMs?: number | MarginRule;
  /**
   * The key's pause hash and its account's backoff hash, in this limiter's hash tag: each
   * admission reads them in the same script, and `acquire` returns them as `gate` (what
   * `readSubmitGate` would answer right after the slot, without its round trip).
   */
  gateKeys?: readonly [pauseKey: string, backoffKey: string];
}

/**
 * A margin scaled to the window: `fraction` of it, at least `minMs`, at most `maxMs`. The acquire
 * script applies it to the window it reads, so a rate changed fleet-wide (`configureRate`)
 * changes every worker's margin with it.
 */
export interface MarginRule {
  fraction: number;
  minMs: number;
  maxMs: number;
}

/**
 * The create limiter's margin: 2.5% of the window, between 100 ms and 250 ms. The jitter it
 * absorbs does not grow with the window, while its cost (margin / (window + margin) of the
 * allowed rate) shrinks with it: 250 ms covers it at KIE's 10 s window for 2.4% of the rate, and
 * on a 4 s window the fraction holds the cost there (100 ms; a fixed 250 ms cost 6%). The floor
 * keeps short windows from trading away the jitter cover itself: a busy event loop's delay.
 */
export const CREATE_MARGIN: MarginRule = { fraction: 0.025, minMs: 100, maxMs: 250 };

/** The script's margin arguments: fraction, floor and cap (a fixed margin is its own floor and cap). */
function marginArgs(margin: number | MarginRule | undefined, what: string): [number, number, number] {
  if (margin === undefined) return [0, 0, 0];
  if (typeof margin === "number") {
    const ms = Math.max(0, Math.round(margin));
    return [0, ms, ms];
  }
  const { fraction, minMs, maxMs } = margin;
  if (!(Number.isFinite(fraction) && fraction >= 0 && minMs >= 0 && maxMs >= minMs)) {
    throw new RangeError(`${what}: a margin rule needs fraction >= 0 and 0 <= minMs <= maxMs`);
  }
  return [fraction, Math.round(minMs), Math.round(maxMs)];
}

const ACQUIRE = RedisScript.fromFile(new URL("./scripts/rate-acquire.lua", import.meta.url));
const CONFIGURE = RedisScript.fromFile(new URL("./scripts/rate-configure.lua", import.meta.url));
const RESTAMP = RedisScript.fromFile(new URL("./scripts/rate-restamp.lua", import.meta.url));

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
  private readonly scriptClock: ScriptClock | undefined;
  private readonly margin: [fraction: number, minMs: number, maxMs: number];
  /** Members must be unique across the fleet: two admissions in one microsecond both count. */
  private readonly memberPrefix = randomUUID();
  private sequence = 0;
  /** The pause and backoff hashes read with each admission (`gateKeys`), or none. */
  private readonly gateKeys: string[];

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
    this.scriptClock = options.scriptClock;
    this.margin = marginArgs(options.marginMs, `limiter "${options.name}"`);
    if (options.gateKeys && !options.shared)
      throw new Error(`limiter "${options.name}": gateKeys need a shared limiter`);
    this.gateKeys = options.gateKeys ? [...options.gateKeys] : [];
  }

  /** Takes a slot if the window has one; otherwise says how long until one frees. */
  async acquire(): Promise<AcquireResult> {
    const keys = this.configKey ? [this.windowKey, this.configKey, ...this.gateKeys] : [this.windowKey];
    this.sequence += 1;
    const member = `${this.memberPrefix}:${this.sequence}`;
    const reply = (await ACQUIRE.run(
      this.redis,
      keys,
      [this.rate.limit, this.rate.windowMs, member, ...this.margin],
      this.scriptClock,
    )) as [number, number, unknown, number?, number?];
    const [admitted, serverTimeUs, third, backoffMs, backoffSet] = reply;
    if (admitted !== 1) return { ok: false, retryInMs: Number(third), serverTimeUs: Number(serverTimeUs) };
    if (backoffMs === undefined) return { ok: true, serverTimeUs: Number(serverTimeUs), member };
    const gate: SubmitGate = {
      paused: parsePauseState(hashFromReply(third)),
      backoffMs: Number(backoffMs),
      backoffSet: Number(backoffSet) === 1,
    };
    return { ok: true, serverTimeUs: Number(serverTimeUs), member, gate };
  }

  /**
   * The create admitted as `member` is about to leave (rate-restamp.lua): its admission is moved to
   * now on the window's clock (added again if it has left the window), never earlier. False when
   * the window, with it counted now, holds more than the limit: its admission is removed and it
   * must not leave (it waits for a slot again).
   */
  async leaving(member: string): Promise<boolean> {
    const keys = this.configKey ? [this.windowKey, this.configKey] : [this.windowKey];
    const reply = await RESTAMP.run(
      this.redis,
      keys,
      [member, this.rate.limit, this.rate.windowMs, ...this.margin],
      this.scriptClock,
    );
    return reply === 1;
  }

  /**
   * Acquires, sleeping `retryInMs` between tries, until admitted; rejects with the signal's
   * reason on abort. Waiters are not served in order: whoever asks first after a slot frees wins.
   */
  async waitForSlot(
    signal?: AbortSignal,
    clock: Clock = this.clock,
  ): Promise<{ serverTimeUs: number; member: string; gate?: SubmitGate }> {
    for (;;) {
      signal?.throwIfAborted();
      const result = await this.acquire();
      if (result.ok) {
        const { serverTimeUs, member, gate } = result;
        return gate ? { serverTimeUs, member, gate } : { serverTimeUs, member };
      }
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
