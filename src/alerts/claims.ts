import type { RedisClient as Redis } from "../redis/script.js";

/** How long a sent event's id is remembered; a batch's ledger lives about as long (KIE_LEDGER_TTL). */
export const ALERT_CLAIM_TTL_MS = 30 * 86_400_000;

/** The right to send one event, fleet-wide. */
export interface AlertClaims {
  /** True for exactly one caller per id (until the claim expires). */
  claim(id: string): Promise<boolean>;
}

/** The key of an event's claim: under the deployment's hash tag, beside its queues and ledger. */
export function alertClaimKey(queuePrefix: string, id: string): string {
  return `{${queuePrefix}}:alerts:${id}`;
}

/**
 * Claims as Redis `SET key 1 NX PX ttl`: the first worker to set the key sends, every other one
 * finds it taken. Claimed before sending, so an event is delivered at most once (a send that
 * fails is not retried by another worker).
 */
export function redisAlertClaims(
  redis: Pick<Redis, "set">,
  queuePrefix: string,
  ttlMs: number = ALERT_CLAIM_TTL_MS,
): AlertClaims {
  return {
    async claim(id) {
      return (
        (await redis.set(alertClaimKey(queuePrefix, id), String(Date.now()), "PX", ttlMs, "NX")) === "OK"
      );
    },
  };
}
