import { type Clock, systemClock } from "../core/clock.js";
import type { RedisClient, ScriptClock } from "../redis/script.js";
import { accountId as accountIdOf, accountKey, sharedAccountId } from "./account.js";
import type { Fleet } from "./fleet.js";
import { FleetBackoff, type FleetBackoffOptions } from "./fleet-backoff.js";
import { DEFAULT_IN_FLIGHT_STALE_MS, InFlight } from "./in-flight.js";
import { FleetPause } from "./pause.js";
import {
  DEFAULT_CREATE_RATE,
  type MarginRule,
  type RateConfig,
  SlidingWindowLimiter,
} from "./rate-limiter.js";
import { readSubmitGate } from "./submit-gate.js";

export type { RedisClient } from "../redis/script.js";
export { accountId, accountKey, accountKeyPattern } from "./account.js";
export type { ArchivePauseState } from "./archive-pause.js";
export { ArchivePause } from "./archive-pause.js";
export type { Fleet } from "./fleet.js";

export { InFlight } from "./in-flight.js";
export type { PauseState } from "./pause.js";
export { FleetPause } from "./pause.js";
export type { ArchivePauseKind, PauseKind } from "./policy.js";
export { PAUSE_KINDS, PAUSE_POLICY } from "./policy.js";
export type { RateConfig } from "./rate-limiter.js";
export { CREATE_MARGIN, SlidingWindowLimiter } from "./rate-limiter.js";

export interface FleetOptions {
  /** The KIE key; only its `accountId` is kept or sent anywhere. */
  apiKey: string;
  /** The deployment using the key (KIE_QUEUE_PREFIX): its in-flight slots are named by it. */
  deployment: string;
  /**
   * The account the key belongs to (KIE_ACCOUNTS): its keys share one create and status window.
   * @defaultValue an account of its own
   */
  account?: string;
  /** Sleeps of `waitForSlot`. @defaultValue systemClock */
  clock?: Clock;
  /**
   * "Now" inside every fleet script (windows, pauses, probes, backoffs, in-flight ages), epoch
   * ms. Tests give one (with a `clock` whose sleeps advance it) to drive windows without sleeping.
   * @defaultValue the Redis server's clock (TIME): one clock for every machine of the fleet
   */
  scriptClock?: ScriptClock;
  /**
   * The create rate this process was started with (KIE_RATE_LIMIT): used until `configureRate`
   * writes the fleet's value, which then wins for every worker of the key.
   * @defaultValue DEFAULT_CREATE_RATE (20 per 10 s)
   */
  createRate?: RateConfig;
  /**
   * How much longer than the window each create slot is held, for the jitter between admission
   * and the request's arrival at KIE (see `SlidingWindowLimiterOptions.marginMs`).
   * @defaultValue 0; workers use CREATE_MARGIN (2.5% of the window, 100-250 ms)
   */
  createMarginMs?: number | MarginRule;
  /** @defaultValue DEFAULT_IN_FLIGHT_STALE_MS */
  inFlightStaleAfterMs?: number;
  /** The 429/455 backoff ladder. @defaultValue fleetBackoff (src/core/backoff.ts) */
  backoffSchedule?: FleetBackoffOptions["schedule"];
}

/** KIE_POLL_RATE as a window: whole calls per second (rounded down), or one call per 1/rate s below 1. */
export function perSecond(ratePerSec: number): RateConfig {
  if (!Number.isFinite(ratePerSec) || ratePerSec <= 0) throw new RangeError("poll rate must be a number > 0");
  return ratePerSec >= 1
    ? { limit: Math.floor(ratePerSec), windowMs: 1_000 }
    : { limit: 1, windowMs: Math.ceil(1_000 / ratePerSec) };
}

/**
 * The fleet state of the account behind `apiKey`. Holds no connection of its own: the caller
 * owns and closes `redis`. A submit's order is: gate open -> in-flight slot -> create slot ->
 * request, so a refused step wastes nothing of the steps before it that it cannot give back.
 */
export function createFleet(redis: RedisClient, options: FleetOptions): Fleet {
  const id = accountIdOf(options.apiKey);
  const windowId = options.account === undefined ? id : sharedAccountId(options.account);
  const clock = options.clock ?? systemClock;
  const scriptClock = options.scriptClock ? { scriptClock: options.scriptClock } : {};
  const pollLimiters = new Map<number, SlidingWindowLimiter>();
  return {
    accountId: id,
    windowId,
    createLimiter: new SlidingWindowLimiter(redis, {
      accountId: windowId,
      name: "create",
      rate: options.createRate ?? DEFAULT_CREATE_RATE,
      shared: true,
      clock,
      ...scriptClock,
      marginMs: options.createMarginMs ?? 0,
      // One tag (the key is its own account): each create admission reads the gate with it.
      ...(windowId === id ? { gateKeys: [accountKey(id, "pause"), accountKey(id, "backoff")] as const } : {}),
    }),
    pollLimiter(ratePerSec) {
      let limiter = pollLimiters.get(ratePerSec);
      if (!limiter) {
        limiter = new SlidingWindowLimiter(redis, {
          accountId: windowId,
          name: "poll",
          rate: perSecond(ratePerSec),
          clock,
          ...scriptClock,
        });
        pollLimiters.set(ratePerSec, limiter);
      }
      return limiter;
    },
    inFlight: new InFlight(redis, {
      accountId: id,
      deployment: options.deployment,
      staleAfterMs: options.inFlightStaleAfterMs ?? DEFAULT_IN_FLIGHT_STALE_MS,
      ...scriptClock,
    }),
    pause: new FleetPause(redis, { accountId: id, ...scriptClock }),
    // KIE's 429 and 455 are the account's: every key of it backs off. Pauses stay the key's.
    backoff: new FleetBackoff(redis, {
      accountId: windowId,
      ...scriptClock,
      ...(options.backoffSchedule ? { schedule: options.backoffSchedule } : {}),
    }),
    readGate: () => readSubmitGate(redis, id, windowId, options.scriptClock),
  };
}

export { createFleetPort } from "./port.js";
