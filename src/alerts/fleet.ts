import type { PauseState } from "../fleet/pause.js";
import type { FleetListener } from "../metrics/fleet.js";
import type { AlertSender } from "./sender.js";

/**
 * Alerts from the stages' fleet port (see `observeFleet`): the worker whose `pause` started a
 * pause says so, and a probe that lifted one says that. The pause's `since` (Redis clock) is read
 * off the stage's path, when the alert is built: it makes the id the one a watching worker
 * derives for the same pause, so only one of them is sent.
 */
export function fleetAlerts(
  alerts: AlertSender,
  account: string,
  getPause: () => Promise<PauseState | null>,
): FleetListener {
  return {
    onPause(kind, reason) {
      const noticedAt = Date.now();
      alerts.emit(async () => {
        const state = await getPause();
        const current = state?.kind === kind ? state : undefined;
        return {
          event: "submissions.paused",
          account,
          kind,
          reason: current?.reason ?? reason,
          since: current?.since ?? noticedAt,
          by: "worker",
        };
      });
    },
    onResume(before) {
      alerts.emit({
        event: "submissions.resumed",
        account,
        kind: before.kind,
        reason: before.reason,
        since: before.since,
        resumedAt: Date.now(),
        by: "probe",
      });
    },
  };
}
