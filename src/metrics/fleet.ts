import type { FleetBackoffKind } from "../core/backoff.js";
import type { PauseState } from "../fleet/pause.js";
import type { PauseKind } from "../fleet/policy.js";
import type { FleetPort } from "../fleet/port.js";
import type { WorkerMetrics } from "./registry.js";

/** Told what this worker's stages did to the fleet's pause and backoff. */
export interface FleetListener {
  /** This worker's `pause` started a pause (true for exactly one caller fleet-wide). */
  onPause?(kind: PauseKind, reason: string): void;
  /** This worker's `resume` (a successful probe) cleared the pause `before`. */
  onResume?(before: PauseState): void;
  /** A 429 or 455 made this worker back the fleet off. */
  onBackoff?(kind: FleetBackoffKind): void;
}

/**
 * The stages' fleet port, observed. `resume` answers nothing, so whether it cleared a pause is
 * read around it: the pause before, and after only when there was one of the kind asked for
 * (probes are rare: a few reads a minute at most). Listeners run synchronously and must not throw.
 */
export function observeFleet(fleet: FleetPort, listeners: readonly FleetListener[]): FleetPort {
  const tell = (fn: (listener: FleetListener) => void) => {
    for (const listener of listeners) {
      try {
        fn(listener);
      } catch {
        // Observation never breaks the stage it watches.
      }
    }
  };
  // Spread: methods added to the port later pass through unobserved rather than go missing.
  return {
    ...fleet,
    async pause(kind, reason, options) {
      const isNew = await fleet.pause(kind, reason, options);
      if (isNew) tell((l) => l.onPause?.(kind, reason));
      return isNew;
    },
    async resume(kind) {
      const before = await fleet.getPause();
      await fleet.resume(kind);
      if (!before || (kind !== undefined && before.kind !== kind)) return;
      const after = await fleet.getPause();
      if (after?.since !== before.since) tell((l) => l.onResume?.(before));
    },
    async backoff(kind) {
      const result = await fleet.backoff(kind);
      tell((l) => l.onBackoff?.(kind));
      return result;
    },
  };
}

/** Counts pauses started, pauses lifted and backoffs triggered by this worker. */
export function fleetMetrics(metrics: WorkerMetrics): FleetListener {
  return {
    onPause: (kind) => metrics.pauses.inc({ kind }),
    onResume: (before) => metrics.resumes.inc({ kind: before.kind }),
    onBackoff: (kind) => metrics.backoffs.inc({ kind }),
  };
}
