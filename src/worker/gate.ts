import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { PauseState } from "../fleet/pause.js";
import { PAUSE_POLICY, PAUSE_RECHECK_MS, type PauseKind } from "../fleet/policy.js";
import type { FleetPort } from "../fleet/port.js";
import { CREDITS_BY_ACCELERATION, type KieApi } from "../kie/types.js";

/** The cheapest image: a balance below it cannot pay for anything. */
const MIN_IMAGE_CREDITS = Math.min(...Object.values(CREDITS_BY_ACCELERATION));

/**
 * How old an open gate, as this process last read it, may be for a submitter to go on to its
 * slots without reading it again. The read right before each create stays fresh (`gateStillOpen`):
 * this only lets a pause set meanwhile cost the rate slots of the creates it then stops.
 */
export const RECENT_GATE_MS = 1_000;

/**
 * Waits while submissions are paused or backing off, fleet-wide. Resolves "open" when a submit may
 * go, or "probe" when this caller won the right to test a usage-cap pause with its own submit
 * (it calls `fleet.resume()` when that submit is accepted).
 *
 * The job stays active while it waits (its lock is renewed), so a long pause holds a few submit
 * slots and nothing else: no job churns through delayed and back, none fails, none pays.
 */
export async function waitForOpenGate(
  deps: {
    fleet: Pick<FleetPort, "readGate" | "recentGate" | "claimProbe" | "resume">;
    kie: Pick<KieApi, "getCredits">;
    clock: Pick<Clock, "sleep">;
  },
  signal: AbortSignal,
  log: Logger,
): Promise<"open" | "probe"> {
  for (;;) {
    signal.throwIfAborted();
    const { paused: pause, backoffMs } = await (deps.fleet.recentGate?.(RECENT_GATE_MS) ??
      deps.fleet.readGate());
    if (pause) {
      const probed = await probePause(deps, pause, signal, log);
      if (probed === "probe") return "probe";
      if (probed === "lifted") continue;
      await deps.clock.sleep(PAUSE_RECHECK_MS, signal);
      continue;
    }
    if (backoffMs > 0) {
      await deps.clock.sleep(backoffMs, signal);
      continue;
    }
    return "open";
  }
}

/**
 * A paused key's probe, when one is due and this caller wins it (Redis's clock decides when it is
 * due; exactly one waiter in the fleet wins it): "probe" (this caller sends the one probing
 * submit), "lifted" (the balance is back: resumed), else "held".
 */
export async function probePause(
  deps: { fleet: Pick<FleetPort, "claimProbe" | "resume">; kie: Pick<KieApi, "getCredits"> },
  pause: PauseState,
  signal: AbortSignal,
  log: Logger,
): Promise<"probe" | "lifted" | "held"> {
  if (pause.nextProbeAt === undefined || !(await deps.fleet.claimProbe())) return "held";
  const policy = PAUSE_POLICY[pause.kind];
  if (policy.probe === "single-submit") return "probe";
  if (policy.probe !== "balance-check") return "held";
  const credits = await deps.kie.getCredits(signal).catch((error: unknown) => {
    log.warn({ err: error }, "credit balance check failed");
    return 0;
  });
  if (credits >= MIN_IMAGE_CREDITS) {
    await deps.fleet.resume(pause.kind);
    log.info({ credits }, policy.probed.lifted);
    return "lifted";
  }
  log.info({ credits }, policy.probed.held);
  return "held";
}

/**
 * True when a create may still go now, by the gate as read right before the request: no 429/455
 * backoff runs, and no pause is set, except the usage-cap pause this caller won the probe of
 * ("probe" from `waitForOpenGate`). A job can wait long for its rate slot after passing the gate;
 * a pause set meanwhile must stop its create (a pause stops creates within one request).
 */
export function gateStillOpen(
  passed: "open" | "probe",
  now: { paused: { kind: PauseKind } | null; backoffMs: number },
): boolean {
  if (now.backoffMs > 0) return false;
  if (!now.paused) return true;
  return passed === "probe" && PAUSE_POLICY[now.paused.kind].probe === "single-submit";
}

/**
 * An accepted create: a usage-cap probe lifts its pause, and a spent 429/455 ladder resets.
 * `read`: the gate as read right before the create; when it saw no backoff record at all, there
 * is no ladder to reset and no Redis call is made (a 429 landing since is left alone: safe).
 */
export async function afterAccepted(
  gate: "open" | "probe",
  fleet: Pick<FleetPort, "resume" | "backoffRemaining" | "clearBackoff">,
  log: Logger,
  read?: { backoffSet?: boolean },
) {
  if (gate === "probe") {
    await fleet.resume("usage-cap");
    log.info(PAUSE_POLICY["usage-cap"].probed.lifted);
  }
  // A success resets the 429/455 ladder, but only once the fleet's backoff has run out: a create
  // that was already on the wire when another submitter met a 429 says nothing about now, and
  // clearing a running backoff would send every waiting submitter into the limit again.
  // (Read-then-clear can drop a 429 that lands in between: one lost step, not a lost row.)
  if (read?.backoffSet === false) return;
  if ((await fleet.backoffRemaining()) === 0) await fleet.clearBackoff();
}
