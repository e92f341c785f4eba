import type { ArchivePauseState, PauseState } from "../fleet/index.js";
import type { AlertEvent } from "./events.js";

interface PauseLike {
  kind: string;
  reason: string;
  since: number;
}

/**
 * The events between the last pause state seen and the next: a pause that began (a new `since`)
 * and a pause that ended. A pause replaced by another is not a resume: the new pause's alert
 * says enough. Ids derive from the pause's `since`, so the claim lets one notice through
 * whichever worker (or the stage that set it) sees it first.
 */
function watchPause<S extends PauseLike>(
  events: {
    paused: "submissions.paused" | "archiving.paused";
    resumed: "submissions.resumed" | "archiving.resumed";
  },
  extra: { account?: string },
  now: () => number,
) {
  let last: S | null | undefined;
  return (state: S | null): AlertEvent[] => {
    const out: AlertEvent[] = [];
    const previous = last;
    last = state;
    const fields = ({ kind, reason, since }: S) => ({ ...extra, kind, reason, since, by: "observed" });
    if (state && previous?.since !== state.since)
      out.push({ event: events.paused, ...fields(state) } as AlertEvent);
    if (previous && !state)
      out.push({ event: events.resumed, ...fields(previous), resumedAt: now() } as AlertEvent);
    return out;
  };
}

/**
 * Follows the account's pause from outside the stages, so pauses nobody in this worker made are
 * told too: `kie-batch pause` and `kie-batch resume`, a worker that died before its alert went out.
 */
export function pauseWatcher(account: string, now: () => number = Date.now) {
  return watchPause<PauseState>(
    { paused: "submissions.paused", resumed: "submissions.resumed" },
    { account },
    now,
  );
}

/**
 * Follows the deployment's archive pause: it is started and lifted inside the archive stage, on
 * any worker, so watching it is the one way every start and every resume is heard, including
 * those of a worker that died just after.
 */
export function archivePauseWatcher(now: () => number = Date.now) {
  return watchPause<ArchivePauseState>({ paused: "archiving.paused", resumed: "archiving.resumed" }, {}, now);
}
