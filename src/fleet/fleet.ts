import type { FleetBackoff } from "./fleet-backoff.js";
import type { InFlight } from "./in-flight.js";
import type { FleetPause } from "./pause.js";
import type { SlidingWindowLimiter } from "./rate-limiter.js";
import type { SubmitGate } from "./submit-gate.js";

/** Everything one KIE account shares across the fleet, in Redis. */
export interface Fleet {
  /** sha256(apiKey) first 16 hex: the only form of the key in Redis and logs. */
  readonly accountId: string;
  /**
   * Where its rate windows live: `accountId`, or the shared id of its named account (KIE_ACCOUNTS),
   * whose keys share one window and one 429/455 backoff. Pauses and in-flight slots stay the key's own.
   */
  readonly windowId: string;
  /** Creates: sliding window, one shared value per account (`createLimiter.configureRate`). */
  readonly createLimiter: SlidingWindowLimiter;
  /** Status calls: `ratePerSec` per second per account (KIE_POLL_RATE, may be fractional); one instance per rate. */
  pollLimiter(ratePerSec: number): SlidingWindowLimiter;
  /** KIE_MAX_IN_FLIGHT slots. */
  readonly inFlight: InFlight;
  /** Fleet pause (manual, 401, 402, 433) and its probes. */
  readonly pause: FleetPause;
  /** Fleet backoff after 429 / 455: the account's (under `windowId`). */
  readonly backoff: FleetBackoff;
  /** Pause and backoff in one round trip: check before each submit. */
  readGate(): Promise<SubmitGate>;
}
