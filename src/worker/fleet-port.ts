import type { Fleet } from "../fleet/index.js";
import type { FleetPort } from "./ports.js";

/** The Redis-backed fleet state, seen through the small port the stages use. */
export function fleetPort(fleet: Fleet, options: { pollRatePerSec: number; maxInFlight: number }): FleetPort {
  const pollLimiter = fleet.pollLimiter(options.pollRatePerSec);
  return {
    async getPause() {
      const state = await fleet.pause.get();
      if (!state) return null;
      return {
        kind: state.kind,
        reason: state.reason,
        since: state.since,
        ...(state.nextProbeAt === undefined ? {} : { nextProbeAt: state.nextProbeAt }),
      };
    },
    async pause(kind, reason, opts) {
      const result = await fleet.pause.pause(kind, reason, opts?.probeAfterMs === undefined ? {} : { probeAfterMs: opts.probeAfterMs });
      return result.isNew;
    },
    async resume(kind) {
      await fleet.pause.resume(kind);
    },
    async claimProbe() {
      return (await fleet.pause.claimProbe()) !== null;
    },
    async backoff(kind) {
      const state = await fleet.backoff.hit(kind);
      return { untilMs: Date.now() + state.remainingMs, consecutive: state.consecutive };
    },
    backoffRemaining: () => fleet.backoff.remaining(),
    clearBackoff: () => fleet.backoff.clear(),
    async createSlot(signal) {
      await fleet.createLimiter.waitForSlot(signal);
    },
    async pollSlot(signal) {
      await pollLimiter.waitForSlot(signal);
    },
    tryAcquireInFlight: (jobKey) => fleet.inFlight.tryAcquire(jobKey, options.maxInFlight),
    async touchInFlight(jobKey) {
      await fleet.inFlight.touch(jobKey);
    },
    async releaseInFlight(jobKey) {
      await fleet.inFlight.release(jobKey);
    },
  };
}
