import { cancelBatch } from "../commands/cancel.js";
import type { Config } from "../config/index.js";
import { withOps } from "./ops-context.js";

/** `kie-batch cancel BATCH`: rows not yet submitted are cancelled; submitted ones go on. */
export async function runCancelCommand(config: Config, batch: string): Promise<void> {
  await withOps(config, (ctx) =>
    cancelBatch(
      {
        ledger: ctx.ledger,
        queues: ctx.queues(),
        out: process.stdout,
        queuePrefix: config.KIE_QUEUE_PREFIX,
        inFlight: { release: (keys) => ctx.releaseInFlightOf(keys) },
        submitJobLocked: (key) => ctx.submitJobLocked(key),
      },
      batch,
    ),
  );
}
