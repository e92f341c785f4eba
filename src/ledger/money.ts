import { finite } from "./codec.js";
import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";
import { progressKey } from "./progress.js";
import type { ReserveOutcome, SettleOutcome } from "./script-outcomes.js";
import { releaseScript, reserveScript, setBudgetScript, settleScript } from "./scripts/index.js";

/*
 * The ledger's money writes, one script each over a row and its batch: a reservation against the
 * budget, a task's settle, a reservation given back, the budget itself (includes/row-money.lua).
 */

function rowMissing(batch: string, rowId: string): LedgerError {
  return new LedgerError("row_missing", `the ledger has no row ${batch}/${rowId}`);
}

/**
 * Reserves `credits` for the row's next submit against its batch's budget. Over budget, the row is
 * marked as waiting (counted once), parked in the batch's parked set (see `wakeParked`), and
 * nothing is reserved. Without a budget the reservation is
 * still recorded, so `status` shows credits in flight.
 */
export async function reserveBudget(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
  credits: number,
): Promise<ReserveOutcome> {
  if (!(credits >= 0)) throw new LedgerError("invalid_value", "credits must be a non-negative number");
  const keys = [
    ctx.keys.batch(batch),
    ctx.keys.row(batch, rowId),
    ctx.keys.parked(batch),
    ctx.keys.reservedEnded(batch),
  ];
  const reply = await reserveScript.run(ctx.redis, keys, [finite("credits", credits), rowId], ctx.clock);
  if (reply === "missing") throw rowMissing(batch, rowId);
  return reply as ReserveOutcome;
}

/**
 * Records what a task cost: the row's reservation is released and `spent` added, once per task
 * (`taskId`, default the row's current task), whatever the number of calls. `parked`: whether
 * the batch has rows parked over its budget now (read in the same step: a caller wakes them
 * only then, without a read of its own).
 */
export async function settleCredits(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
  spent: number,
  taskId?: string,
): Promise<{ outcome: SettleOutcome; parked: boolean }> {
  if (!(spent >= 0)) throw new LedgerError("invalid_value", "spent must be a non-negative number");
  const keys = [
    ctx.keys.batch(batch),
    ctx.keys.row(batch, rowId),
    progressKey(ctx, batch),
    ctx.keys.parked(batch),
  ];
  const args = [finite("spent", spent), taskId ?? ""];
  const [outcome, parked] = (await settleScript.run(ctx.redis, keys, args, ctx.clock)) as [string, number];
  if (outcome === "missing") throw rowMissing(batch, rowId);
  return { outcome: outcome as SettleOutcome, parked: parked > 0 };
}

/**
 * Drops the row's reservation (a submit that definitely created nothing): the credits released,
 * and whether the batch has rows parked over its budget now (false when nothing was released).
 */
export async function releaseReservation(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
): Promise<{ released: number; parked: boolean }> {
  const released = await runRelease(ctx, batch, rowId, []);
  if (released === "missing") throw rowMissing(batch, rowId);
  return released;
}

/**
 * Gives back the reservation of a row that has ended (cancelled or failed) with no unsettled task,
 * and only then (release.lua's guard): a row `retry` moved back to queued keeps it for its next
 * attempt, and a recorded task that has not settled keeps its own (it may still be charged). The
 * reconciler's repair (`worker/reconcile-money.ts`); a missing row gives 0.
 */
export async function releaseEnded(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
): Promise<{ released: number; parked: boolean }> {
  const released = await runRelease(ctx, batch, rowId, ["1"]);
  return released === "missing" ? { released: 0, parked: false } : released;
}

async function runRelease(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
  args: string[],
): Promise<{ released: number; parked: boolean } | "missing"> {
  const keys = [ctx.keys.batch(batch), ctx.keys.row(batch, rowId), ctx.keys.parked(batch)];
  const [released, parked] = (await releaseScript.run(ctx.redis, keys, args, ctx.clock)) as [string, number];
  return released === "missing" ? "missing" : { released: Number(released), parked: parked > 0 };
}

/** Sets (or with null, removes) a batch's budget. Returns false when the batch does not exist. */
export async function setBudget(ctx: LedgerContext, batch: string, credits: number | null): Promise<boolean> {
  if (credits !== null && !(credits >= 0)) throw new LedgerError("invalid_value", "budget must be >= 0");
  const value = credits === null ? "" : finite("budget", credits);
  return (await setBudgetScript.run(ctx.redis, [ctx.keys.batch(batch)], [value], ctx.clock)) === 1;
}
