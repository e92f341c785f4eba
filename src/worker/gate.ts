import type { Logger } from "../core/logger.js";
import { CREDITS_BY_ACCELERATION } from "../kie/types.js";
import type { StageDeps } from "./ports.js";

/** How often a waiting submitter looks at the fleet's pause state again. */
export const PAUSE_RECHECK_MS = 2_000;
/** Out of credits: the balance is checked this often. */
export const CREDITS_PROBE_MS = 60_000;
/** A key's own usage cap (433): one real submit probes it this often. */
export const USAGE_CAP_PROBE_MS = 5 * 60_000;
/** The cheapest image: a balance below it cannot pay for anything. */
const MIN_IMAGE_CREDITS = Math.min(...Object.values(CREDITS_BY_ACCELERATION));

/**
 * Waits while submissions are paused or backing off, fleet-wide. Resolves "open" when a submit may
 * go, or "probe" when this caller won the right to test a usage-cap pause with its own submit
 * (it calls `fleet.resume()` when that submit is accepted).
 *
 * The job stays active while it waits (its lock is renewed), so a long pause holds a few submit
 * slots and nothing else: no job churns through delayed and back, none fails, none pays.
 */
export async function waitForOpenGate(
  deps: Pick<StageDeps, "fleet" | "kie" | "clock">,
  signal: AbortSignal,
  log: Logger,
): Promise<"open" | "probe"> {
  for (;;) {
    signal.throwIfAborted();
    const { paused: pause, backoffMs } = await deps.fleet.readGate();
    if (pause) {
      // Redis's clock decides when a probe is due; exactly one waiter in the fleet wins it.
      if (pause.nextProbeAt !== undefined && (await deps.fleet.claimProbe())) {
        if (pause.kind === "usage-cap") return "probe";
        if (pause.kind === "out-of-credits") {
          const credits = await deps.kie.getCredits(signal).catch((error: unknown) => {
            log.warn({ err: error }, "credit balance check failed");
            return 0;
          });
          if (credits >= MIN_IMAGE_CREDITS) {
            await deps.fleet.resume("out-of-credits");
            log.info({ credits }, "credits are back: submissions resume");
            continue;
          }
          log.info({ credits }, "still out of credits: submissions stay paused");
        }
      }
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
