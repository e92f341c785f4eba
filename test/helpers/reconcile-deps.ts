import { reconcileJobs } from "../../src/bull/reconcile-jobs.js";
import type { Clock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { ReconcileDeps } from "../../src/worker/reconcile.js";
import type { LedgerQueuesContext } from "./ledger-context.js";

/** The reconciler's ports over a test's ledger and queues, on the test's clock, quiet. */
export function reconcileDeps(
  ctx: LedgerQueuesContext,
  clock: Pick<Clock, "now">,
  pageSize: number,
): ReconcileDeps {
  return {
    ledger: ctx.ledger,
    jobs: reconcileJobs(ctx.queues, ctx.redis),
    clock,
    log: silentLogger(),
    pageSize,
  };
}
