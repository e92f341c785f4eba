import type { FleetBackoffKind } from "../core/backoff.js";
import type { FleetEffect, KieError } from "../kie/errors.js";

/**
 * The fleet's policy, in one place: what each pause kind means (rank, probe, what the operator
 * is told) and what the submit stage does with each fleet-wide KIE answer. The pause store
 * (pause.ts), the submit gate and stage (worker/), alerts, status and metrics all read it here.
 */

/** How one worker finds out whether a pause's condition has passed. */
export type ProbeMethod =
  /** Read the credit balance (no spend). */
  | "balance-check"
  /** Send one real submit: nothing else shows the condition. */
  | "single-submit"
  /** Nothing improves by itself: an operator resumes. */
  | "none";

export interface PausePolicy {
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

/** Why submissions are paused fleet-wide. */
export type PauseKind = "manual" | "bad-key" | "out-of-credits" | "usage-cap";

export const PAUSE_POLICY = {
  /** `kie-batch pause`: only `kie-batch resume` ends it. */
  manual: {
    rank: 3,
    probe: "none",
    reason: (detail) => detail,
    started: "submissions paused",
  },
  /** 401: nothing improves until someone fixes the key and resumes. */
  "bad-key": {
    rank: 2,
    probe: "none",
    reason: () => "KIE refused the API key (401): set a valid KIE_API_KEY, then run `kie-batch resume`",
    started: "KIE refused the API key: submissions paused fleet-wide until `kie-batch resume`",
  },
  /** 402: check the credit balance every minute. */
  "out-of-credits": {
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
    rank: 1,
    probe: "single-submit",
    probeEveryMs: 5 * 60_000,
    reason: (detail) => `KIE: the key's usage cap is reached (${detail})`,
    started: "the API key's usage cap is reached: submissions paused; one submit probes every 5 minutes",
    probed: { lifted: "usage-cap probe accepted: submissions resume" },
  },
} as const satisfies Record<PauseKind, PausePolicy>;

/** Every pause kind, in the table's order (for metrics series and help texts). */
export const PAUSE_KINDS = Object.keys(PAUSE_POLICY) as PauseKind[];

export function isPauseKind(value: string): value is PauseKind {
  return Object.hasOwn(PAUSE_POLICY, value);
}

/** How often a submitter held at the gate looks at the fleet's pause state again. */
export const PAUSE_RECHECK_MS = 2_000;

/** What the submit stage does with each fleet-wide KIE answer; no job fails or pays for any. */
export const FLEET_EFFECT_POLICY = {
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
