import type { FleetBackoffKind } from "../core/backoff.js";
import type { Fleet } from "./index.js";
import type { PauseKind, PauseOptions, PauseState } from "./pause.js";

/**
 * The fleet as the worker stages consume it (structurally the `FleetPort` of
 * src/worker/ports.ts, which this folder does not import: fleet/ stays below worker/).
 */
export interface FleetPortSettings {
  /** KIE_MAX_IN_FLIGHT; 0 = no cap (slots are still counted for status). */
  maxInFlight: number;
  /** KIE_POLL_RATE: status calls per second for the account. */
  pollRatePerSec: number;
}

export function createFleetPort(fleet: Fleet, settings: FleetPortSettings) {
  const pollLimiter = fleet.pollLimiter(settings.pollRatePerSec);
  return {
    getPause: (): Promise<PauseState | null> => fleet.pause.get(),
    readGate: () => fleet.readGate(),
    pause: async (kind: PauseKind, reason: string, options?: PauseOptions): Promise<boolean> =>
      (await fleet.pause.pause(kind, reason, options)).isNew,
    /** Pass `kind` after a successful probe, so it cannot lift a pause an operator set meanwhile. */
    resume: async (kind?: PauseKind): Promise<void> => {
      await fleet.pause.resume(kind);
    },
    claimProbe: async (): Promise<boolean> => (await fleet.pause.claimProbe()) !== null,
    backoff: async (
      kind: FleetBackoffKind,
    ): Promise<{ untilMs: number; consecutive: number; remainingMs: number }> => {
      const { untilMs, consecutive, remainingMs } = await fleet.backoff.hit(kind);
      return { untilMs, consecutive, remainingMs };
    },
    backoffRemaining: (): Promise<number> => fleet.backoff.remaining(),
    clearBackoff: (): Promise<void> => fleet.backoff.clear(),
    createSlot: async (signal: AbortSignal): Promise<void> => {
      await fleet.createLimiter.waitForSlot(signal);
    },
    pollSlot: async (signal: AbortSignal): Promise<void> => {
      await pollLimiter.waitForSlot(signal);
    },
    tryAcquireInFlight: (jobKey: string): Promise<boolean> =>
      fleet.inFlight.tryAcquire(jobKey, settings.maxInFlight),
    touchInFlight: async (jobKey: string): Promise<void> => {
      await fleet.inFlight.touch(jobKey);
    },
    releaseInFlight: async (jobKey: string): Promise<void> => {
      await fleet.inFlight.release(jobKey);
    },
  };
}

export type FleetPortAdapter = ReturnType<typeof createFleetPort>;
