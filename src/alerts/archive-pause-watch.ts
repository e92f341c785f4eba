import type { ArchivePauseState } from "../fleet/index.js";
import type { AlertEvent } from "./events.js";

/**
 * Follows the deployment's archive pause: a store outage and its end are told once, whichever
 * worker sees them first (the id is the pause's `since`, the claim lets one notice through). The
 * pause is started and lifted inside the archive stage, on any worker, so watching it is the one
 * way every start and every resume is heard, including those of a worker that died just after.
 */
export function archivePauseWatcher(now: () => number = Date.now) {
  let last: ArchivePauseState | null | undefined;
  return (state: ArchivePauseState | null): AlertEvent[] => {
    const events: AlertEvent[] = [];
    const previous = last;
    last = state;
    if (state && previous?.since !== state.since) {
      events.push({
        event: "archiving.paused",
        kind: state.kind,
        reason: state.reason,
        since: state.since,
        by: "observed",
      });
    }
    if (previous && !state) {
      events.push({
        event: "archiving.resumed",
        kind: previous.kind,
        reason: previous.reason,
        since: previous.since,
        resumedAt: now(),
        by: "observed",
      });
    }
    return events;
  };
}
