import type { FleetBackoffKind } from "../core/backoff.js";
import type { FleetEffect, KieError } from "../kie/errors.js";

/**
 * The fleet's policy, in one place: what each pause kind means (rank, probe, what the operator
 * is told) and what the submit stage does with each fleet-wide KIE answer. The pause store
 * (pause.ts), the submit gate and stage (worker/), alerts, status and metrics all read it here.
 */

/** How one worker finds out whether a pause's condition has passed. */
type ProbeMethod =
  /** Read the credit balance (no spend). */
  | "balance-check"
  /** Send one real submit: nothing else shows the condition. */
  | "single-submit"
  /** Write, read back and delete a small object under the store's probe key. */
  | "store-write"
  /** Nothing improves by itself: an operator resumes. */
  | "none";

export interface PausePolicy {
  /**
   * The stage the pause holds: "submit" pauses live per KIE account (its credits, its key),
   * "archive" pauses per deployment (queue prefix), since the archive store is the deployment's.
   * A pause never holds the other stage: a store outage must not stop paid generations from
   * finishing, nor a 402 stop finished images from being saved.
   */
  readonly stage: "submit" | "archive";
  /**
   * Which pause wins when two meet: a higher rank replaces a lower one, never the reverse, so a
   * probe can never lift an operator's pause.
   */
  readonly rank: number;
  readonly probe: ProbeMethod;
  /** How often ONE worker probes; absent when `probe` is "none". A worker's settings may override it. */
  readonly probeEveryMs?: number;
  /**
   * The pause's reason, as status, the dashboard and alerts show it (after the kind).
   * `detail`: the KIE error's message, or the operator's own words for a manual pause.
   */
  readonly reason: (detail: string) => string;
  /** What the one worker (or command) that starts the pause says. */
  readonly started: string;
  /** What a probe logs when the condition has passed, and when it still holds. */
  readonly probed?: { readonly lifted: string; readonly held?: string };
}

/** Why submissions are paused fleet-wide (per account). */
export type PauseKind = "manual" | "bad-key" | "out-of-credits" | "usage-cap";

/** Why archiving is paused fleet-wide (per deployment): the store refuses the credential or the write. */
export type ArchivePauseKind = "store-unavailable";

export const PAUSE_POLICY = {
  /** `kie-batch pause`: only `kie-batch resume` ends it. */
  manual: {
    stage: "submit",
    rank: 3,
    probe: "none",
    reason: (detail) => detail,
    started: "submissions paused",
  },
  /** 401: nothing improves until someone fixes the key and resumes. */
  "bad-key": {
    stage: "submit",
    rank: 2,
    probe: "none",
    reason: () =>
      "KIE refused the API key (401): set a valid KIE_API_KEY (with KIE_API_KEYS: replace the key the log names by its short hash), then run `kie-batch resume`",
    started: "KIE refused the API key: submissions paused fleet-wide until `kie-batch resume`",
  },
  /** 402: check the credit balance every minute. */
  "out-of-credits": {
    stage: "submit",
    rank: 1,
    probe: "balance-check",
    probeEveryMs: 60_000,
    reason: (detail) => `KIE: credits insufficient (${detail})`,
    // Says "every minute" whatever a worker's creditsProbeMs: operators search logs for this line.
    started: "out of credits: submissions paused fleet-wide; the balance is checked every minute",
    probed: {
      lifted: "credits are back: submissions resume",
      held: "still out of credits: submissions stay paused",
    },
  },
  /** 433: the balance does not show the cap; probe with a single submit every 5 minutes. */
  "usage-cap": {
    stage: "submit",
    rank: 1,
    probe: "single-submit",
    probeEveryMs: 5 * 60_000,
    reason: (detail) => `KIE: the key's usage cap is reached (${detail})`,
    started: "the API key's usage cap is reached: submissions paused; one submit probes every 5 minutes",
    probed: { lifted: "usage-cap probe accepted: submissions resume" },
  },
  /**
   * The archive store refuses the credential or the permission (AccessDenied, InvalidAccessKeyId,
   * SignatureDoesNotMatch, NoSuchBucket, a bare 403), the folder is not writable, or the disk or
   * quota is full (ENOSPC, EDQUOT, MinIO's 507): every row would fail the same way, so none does. Rows wait in `archiving`; one worker probes the store
   * every minute and archiving resumes by itself when it answers. Submissions go on.
   */
  "store-unavailable": {
    stage: "archive",
    rank: 1,
    probe: "store-write",
    probeEveryMs: 60_000,
    reason: (detail) =>
      `the archive store refuses writes (${detail}); rows wait in archiving, the store is probed every minute`,
    // Says "every minute" whatever a worker's KIE_STORE_PROBE_INTERVAL: operators search logs for this line.
    started: "archive store unavailable: archiving paused fleet-wide; the store is probed every minute",
    probed: {
      lifted: "archive store answers again: archiving resumes",
      held: "archive store still refuses: archiving stays paused",
    },
  },
} as const satisfies Record<PauseKind | ArchivePauseKind, PausePolicy>;

/** Every submission pause kind, in the table's order (for metrics series and help texts). */
export const PAUSE_KINDS = (Object.keys(PAUSE_POLICY) as (PauseKind | ArchivePauseKind)[]).filter(
  (kind): kind is PauseKind => PAUSE_POLICY[kind].stage === "submit",
);

/** Every archive pause kind. */
const ARCHIVE_PAUSE_KINDS = (Object.keys(PAUSE_POLICY) as (PauseKind | ArchivePauseKind)[]).filter(
  (kind): kind is ArchivePauseKind => PAUSE_POLICY[kind].stage === "archive",
);

/** A submission pause kind; an archive kind in a submission pause hash is not one (it is read as "manual"). */
export function isPauseKind(value: string): value is PauseKind {
  return (PAUSE_KINDS as string[]).includes(value);
}

export function isArchivePauseKind(value: string): value is ArchivePauseKind {
  return (ARCHIVE_PAUSE_KINDS as string[]).includes(value);
}

/** How often a submitter held at the gate looks at the fleet's pause state again. */
export const PAUSE_RECHECK_MS = 2_000;

/** What the submit stage does with each fleet-wide KIE answer; no job fails or pays for any. */
const FLEET_EFFECT_POLICY = {
  /** 429: the request created nothing; every submitter backs off. */
  "rate-limited": { action: "back-off", kind: "rate-limited", log: "fleet backs off" },
  /** 455: maintenance lasts minutes; every submitter backs off. */
  maintenance: { action: "back-off", kind: "maintenance", log: "fleet backs off" },
  "out-of-credits": { action: "pause", kind: "out-of-credits" },
  "usage-cap": { action: "pause", kind: "usage-cap" },
  "bad-key": { action: "pause", kind: "bad-key" },
} as const satisfies Record<
  FleetEffect,
  { action: "back-off"; kind: FleetBackoffKind; log: string } | { action: "pause"; kind: PauseKind }
>;

/** The submit stage's move for one fleet-wide KIE answer: then it goes back to the gate. */
export type SubmitFleetAction =
  | { readonly action: "back-off"; readonly kind: FleetBackoffKind; readonly log: string }
  | {
      readonly action: "pause";
      readonly kind: PauseKind;
      readonly reason: string;
      /** Absent for kinds without probes. */
      readonly probe?: { readonly probeAfterMs: number; readonly probeEveryMs: number };
      /** Logged by the one caller that started the pause. */
      readonly log: string;
    };

/**
 * The action for `error`, or undefined when it concerns only its own job. `probeEveryMs`: this
 * worker's configured intervals; it is passed on as the probe period too, since the fleet's
 * default would be the table's whatever this worker was configured with.
 */
export function submitFleetAction(
  error: Pick<KieError, "fleetEffect" | "message">,
  probeEveryMs: Partial<Record<PauseKind, number | undefined>> = {},
): SubmitFleetAction | undefined {
  if (error.fleetEffect === undefined) return undefined;
  const effect:
    | { action: "back-off"; kind: FleetBackoffKind; log: string }
    | { action: "pause"; kind: PauseKind } = FLEET_EFFECT_POLICY[error.fleetEffect];
  if (effect.action === "back-off") return effect;
  const policy: PausePolicy = PAUSE_POLICY[effect.kind];
  const every = policy.probe === "none" ? undefined : (probeEveryMs[effect.kind] ?? policy.probeEveryMs);
  return {
    action: "pause",
    kind: effect.kind,
    reason: policy.reason(error.message),
    ...(every === undefined ? {} : { probe: { probeAfterMs: every, probeEveryMs: every } }),
    log: policy.started,
  };
}
