import type { PauseState } from "../fleet/index.js";
import type { AlertEvent } from "./events.js";

/**
 * Follows the account's pause from outside the stages, so pauses nobody in this worker made are
 * told too: `kie-batch pause` and `kie-batch resume`, a worker that died before its alert went out.
 * It derives the same ids as the stages' own alerts (account + the pause's `since`), so the claim
 * lets one notice through whoever sees it first.
 */
export function pauseWatcher(account: string, now: () => number = Date.now) {
  let last: PauseState | null | undefined;
  /** The events between the last state seen and `state`. */
  return (state: PauseState | null): AlertEvent[] => {
    const events: AlertEvent[] = [];
    const previous = last;
    last = state;
    if (state && previous?.since !== state.since) {
      events.push({
        event: "submissions.paused",
        account,
        kind: state.kind,
        reason: state.reason,
        since: state.since,
        by: "observed",
      });
    }
    // A pause replaced by another is not a resume: the new pause's alert says enough.
    if (previous && !state) {
      events.push({
        event: "submissions.resumed",
        account,
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
