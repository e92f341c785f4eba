import { reconcileNow, sweepClock } from "../app/reconciler.js";
import { retryBatch } from "../commands/retry.js";
import type { Config } from "../config/index.js";
import { silentLogger } from "../core/logger.js";
import { withOps } from "./ops-context.js";

/** `kie-batch retry BATCH`: failed rows back into the pipeline. */
export async function runRetryCommand(config: Config, batch: string): Promise<void> {
  await withOps(config, (ctx) =>
    retryBatch(
      {
        ledger: ctx.ledger,
        queues: ctx.queues(),
        clock: ctx.clock,
        out: process.stdout,
        queuePrefix: config.KIE_QUEUE_PREFIX,
        // The settle time the README promises for retry's sweep too (60 s without it).
        reconcile: (name) =>
          reconcileNow(
            {
              ...ctx,
              // The rows' stamps are the Redis server's time: this machine's clock may be off.
              clock: sweepClock(ctx.redis),
              queues: ctx.queues(),
              log: silentLogger(),
              settleMs: config.KIE_RECONCILE_SETTLE,
            },
            name,
          ),
      },
      batch,
    ),
  );
}
