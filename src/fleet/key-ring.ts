import type { KieApi } from "../kie/types.js";
import type { KeyRole } from "./key-lease.js";
import type { FleetPort } from "./port.js";

/**
 * One API key of the worker: its client and its fleet state (its own pauses, backoff and
 * in-flight slots; its account's rate window). Named everywhere by `id`, the key's short hash.
 */
export interface KeyLane {
  /** `accountId(key)`: the only form of the key in Redis, the ledger, logs and metrics. */
  readonly id: string;
  /** The account name (KIE_ACCOUNTS), else `id`: what status and metrics show beside it. */
  readonly account: string;
  readonly kie: KieApi;
  readonly fleet: FleetPort;
}

/** The worker's keys, first KIE_API_KEY's (or the first of KIE_API_KEYS). */
export interface KeyRing {
  readonly lanes: readonly KeyLane[];
  /** The lane of a key id, undefined when this worker does not have that key. */
  lane(id: string): KeyLane | undefined;
  /**
   * The key of a task recorded without one (rows created before every task recorded its key):
   * the deployment's default key, kept in Redis since its first worker started. Never this
   * worker's own first key, which may be another account's. Absent: the first lane's.
   */
  readonly keylessId?: string;
  /**
   * Whether some live worker of the deployment that runs the `role` stage holds the key `id`
   * (key-lease.ts): only such a worker takes that stage's jobs. Absent: unknown, none.
   */
  held?(id: string, role: KeyRole): Promise<boolean>;
  /** Frees a job's in-flight slot under the key `id`, a key of this worker or not. */
  releaseInFlight?(id: string, jobKey: string): Promise<void>;
  /** Frees a job's in-flight slot under every key of the deployment (those of other workers too). */
  releaseInFlightEverywhere?(jobKey: string): Promise<void>;
  /**
   * Notes that a job of the `role` stage waits for the key `id`, which no live worker of that
   * stage holds, for `status` (key-lease.ts).
   */
  noteWait?(id: string, role: KeyRole): Promise<void>;
}

export function keyRing(
  lanes: readonly KeyLane[],
  extras: Pick<
    KeyRing,
    "keylessId" | "held" | "releaseInFlight" | "releaseInFlightEverywhere" | "noteWait"
  > = {},
): KeyRing {
  if (lanes.length === 0) throw new RangeError("keyRing: no key");
  const byId = new Map(lanes.map((lane) => [lane.id, lane]));
  return { lanes, lane: (id) => byId.get(id), ...extras };
}
