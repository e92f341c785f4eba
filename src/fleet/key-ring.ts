import type { KieApi } from "../kie/types.js";
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
}

export function keyRing(lanes: readonly KeyLane[]): KeyRing {
  if (lanes.length === 0) throw new RangeError("keyRing: no key");
  const byId = new Map(lanes.map((lane) => [lane.id, lane]));
  return { lanes, lane: (id) => byId.get(id) };
}
