import type { BatchSummary } from "../ledger/index.js";
import { requireBatch } from "../report/batch.js";
import { formatCredits } from "../report/status-text.js";
import type { OpsLedger, Output } from "../report/types.js";
import { type WakeAndFeedDeps, wakeAndFeed } from "../worker/budget-wake.js";

export interface BudgetDeps {
  ledger: Pick<OpsLedger, "getBatch" | "listBatches" | "setBudget"> & WakeAndFeedDeps["ledger"];
  out: Output;
  queuePrefix?: string;
  /**
   * The submit queue, to give the rows the new budget holds their jobs now (parked rows woken,
   * held rows of the submit window fed). Without it they wait for the reconciler's next sweep.
   */
  queues?: WakeAndFeedDeps["queues"];
}

/**
 * `kie-batch budget`: sets (or with null removes) the batch's credit budget, wakes as many of the
 * rows parked over the old one as the new one holds (in manifest order: each gets its submit job
 * back), then shows what is reserved and spent against it. Parked rows cost nothing while they
 * wait: no job, no Redis call.
 */
export async function setBatchBudget(
  deps: BudgetDeps,
  batch: string,
  credits: number | null,
): Promise<BatchSummary> {
  const before = await requireBatch(deps.ledger, batch, deps.queuePrefix);
  if (!(await deps.ledger.setBudget(batch, credits))) {
    // Expired or purged between the two calls.
    await requireBatch(deps.ledger, batch, deps.queuePrefix);
  }
  const { woken, fed } = deps.queues
    ? await wakeAndFeed({ ledger: deps.ledger, queues: deps.queues }, batch)
    : { woken: 0, fed: 0 };
  const after = await requireBatch(deps.ledger, batch, deps.queuePrefix);
  const was = before.budget === undefined ? "none" : formatCredits(before.budget);
  // Uncertain credits (creates whose reply was lost) count as spent: KIE may have charged them.
  const used = after.creditsReserved + after.creditsSpent + after.creditsUncertain;
  const lines = [
    credits === null
      ? `batch ${batch}: budget removed (was ${was})`
      : `batch ${batch}: budget ${formatCredits(credits)} credits (was ${was})`,
    `  reserved ${formatCredits(after.creditsReserved)} + spent ${formatCredits(after.creditsSpent)}${after.creditsUncertain > 0 ? ` + uncertain ${formatCredits(after.creditsUncertain)}` : ""} = ${formatCredits(used)}` +
      (credits === null || credits === 0 ? "" : ` (${Math.round((used / credits) * 100)}% of the budget)`) +
      `; estimated for the whole batch ${formatCredits(after.creditsEstimated)}`,
  ];
  if (credits !== null && used > credits) {
    lines.push(
      "  already over the new budget: no new row is submitted until it is raised (rows whose create is out go on; rows holding a reservation give it back and wait)",
    );
  } else if (credits !== null && after.creditsEstimated > credits) {
    lines.push("  below the batch's estimate: some rows may wait for budget");
  }
  if (woken > 0) lines.push(`  ${woken} rows that were waiting for budget go now`);
  if (fed > 0) lines.push(`  ${fed} rows held back by the submit window go now`);
  if (after.cancelledAt !== undefined && after.waitingBudget + (after.held ?? 0) > 0) {
    lines.push(
      `  the batch was cancelled: no row of it is woken or fed; a running worker's next reconciler sweep cancels the rows left (\`kie-batch cancel ${batch}\` again does it now); \`kie-batch retry ${batch}\` before then lets them go on`,
    );
  } else if (after.waitingBudget > 0) {
    lines.push(
      `  ${after.waitingBudget} rows are waiting for budget; they cost nothing meanwhile and go as the budget allows (raised, or freed by rows that end)`,
    );
  }
  deps.out.write(`${lines.join("\n")}\n`);
  return after;
}
