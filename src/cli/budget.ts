import { parseBudget, setBatchBudget } from "../commands/budget.js";
import type { Config } from "../config/index.js";
import { parseArgument, withOps } from "./ops-context.js";

/** `kie-batch budget BATCH CREDITS|none`. */
export async function runBudgetCommand(config: Config, batch: string, credits: string): Promise<void> {
  const budget = parseArgument(() => parseBudget(credits));
  await withOps(config, (ctx) =>
    setBatchBudget(
      { ledger: ctx.ledger, out: process.stdout, queuePrefix: config.KIE_QUEUE_PREFIX },
      batch,
      budget,
    ),
  );
}
