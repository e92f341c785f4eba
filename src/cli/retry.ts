import { reconcileNow, syncedSweepClock } from "../app/reconciler.js";
import { retryBatch } from "../commands/retry.js";
import type { Config } from "../config/index.js";
import { silentLogger } from "../core/logger.js";
import { withOps } from "./ops-context.js";

/** `kie-batch retry BATCH`: failed rows back into the pipeline. */
export async function runRetryCommand(config: Config, batch: string): Promise<void> {
  await withOps(config, async (ctx) => {
    // The Redis server's clock, for the rows' stamps (the retried rows' `submittedAt`, which the
    // workers' polls measure KIE_MAX_WAIT from) and the sweep's cutoffs: this machine's may be off.
    const clock = await syncedSweepClock(ctx.redis);
    return retryBatch(
      {
        ledger: ctx.ledger,
        queues: ctx.queues(),
        clock,
        out: process.stdout,
        queuePrefix: config.KIE_QUEUE_PREFIX,
        // The settle time the README promises for retry's sweep too (60 s without it).
        reconcile: (name) =>
          reconcileNow(
            {
              ...ctx,
              clock,
              queues: ctx.queues(),
              log: silentLogger(),
              settleMs: config.KIE_RECONCILE_SETTLE,
            },
            name,
          ),
      },
      batch,
    );
  });
}
