import { columnsKey } from "./columns.js";
import type { LedgerContext } from "./context.js";
import { progressKey } from "./progress.js";

/**
 * A batch's keys besides its hash and its rows (see keys.ts, and columns.ts for `:columns`): what
 * its expiry, the removal of that expiry when it reopens, and a purge must each cover, all of
 * them. All in the batch's hash tag (keys.ts). The scripts that reopen a batch take them in this
 * order (includes/reopen.lua; transition.lua at KEYS[3..12], add-rows.lua at KEYS[2..11]): add a
 * key here and there together.
 */
export function batchSideKeys(ctx: LedgerContext, batch: string): string[] {
  return [
    ctx.keys.order(batch),
    ctx.keys.unarchived(batch),
    ...ctx.keys.stateIndexes(batch),
    columnsKey(ctx, batch),
    ctx.keys.parked(batch),
    progressKey(ctx, batch),
  ];
}
