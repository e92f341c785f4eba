import { RedisScript } from "../redis/script.js";
import { finite } from "./codec.js";
import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";

const keepUncertainScript = RedisScript.fromFile(new URL("./scripts/budget-uncertain.lua", import.meta.url));

/** Credits may be fractional and float sums are not exact: every budget comparison allows this much. */
const CREDIT_SLACK = 1e-9;

/**
 * A create attempt whose task nobody can name: the row's lineage when it was made (its tasks then)
 * and its create-on-the-wire mark (`creating`, epoch ms).
 */
export interface UncertainAttempt {
  lineage: number;
  mark: number;
}

/** A batch hash's money fields as Redis gives them (null: absent). */
interface BudgetFields {
  budget: string | null | undefined;
  spent: string | null | undefined;
  reserved: string | null | undefined;
  uncertain: string | null | undefined;
}

/**
 * Whether `cost` more credits fit under the batch's budget (spent + reserved + uncertain; none:
 * everything fits). The scripts' own copy is `scripts/includes/budget.lua`: the same sum, the same slack.
 */
export function budgetFits(fields: BudgetFields, cost = 0): boolean {
  if (fields.budget === null || fields.budget === undefined) return true;
  const room =
    Number(fields.budget) -
    Number(fields.spent ?? 0) -
    Number(fields.reserved ?? 0) -
    Number(fields.uncertain ?? 0);
  return cost <= room + CREDIT_SLACK;
}

/**
 * Counts a create attempt that may have been charged unseen (its reply lost, its worker dead with
 * it on the wire, its task not recordable): the row's reservation becomes spent-uncertain for
 * good, or `credits` when the row holds none, and the row and batch count one uncertain submit.
 * The next attempt must reserve anew, so the budget still bounds what KIE can have charged.
 * With `taskId` (a known task whose charge is uncertain, e.g. unknown to KIE past the grace) it
 * counts once per task, and settling that task later takes it back out of uncertain. With
 * `attempt` (a create whose task is unknown), it counts once per attempt, and not at all once the
 * attempt's task was recorded. Returns the credits counted.
 */
export async function keepUncertain(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
  credits: number,
  taskId?: string,
  attempt?: UncertainAttempt,
): Promise<number> {
  if (!(credits >= 0)) throw new LedgerError("invalid_value", "credits must be a non-negative number");
  const keys = [ctx.keys.batch(batch), ctx.keys.row(batch, rowId)];
  const reply = await keepUncertainScript.run(
    ctx.redis,
    keys,
    [finite("credits", credits), taskId ?? "", attempt?.lineage ?? "", attempt?.mark ?? ""],
    ctx.clock,
  );
  if (reply === "missing") throw new LedgerError("row_missing", `the ledger has no row ${batch}/${rowId}`);
  return Number(reply);
}
