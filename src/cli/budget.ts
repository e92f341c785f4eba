import { setBatchBudget } from "../commands/budget.js";
import type { Config } from "../config/index.js";
import { parseBudget } from "../core/values.js";
import { withOps } from "./ops-context.js";

/** `kie-batch budget BATCH CREDITS|none`. */
export async function runBudgetCommand(config: Config, batch: string, credits: string): Promise<void> {
  // Checked before any connection is opened; a ValueError exits 2.
  const budget = parseBudget(credits);
  await withOps(config, (ctx) =>
    setBatchBudget(
      { ledger: ctx.ledger, queues: ctx.queues(), out: process.stdout, queuePrefix: config.KIE_QUEUE_PREFIX },
      batch,
      budget,
    ),
  );
}
