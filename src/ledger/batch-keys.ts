import { columnsKey } from "./columns.js";
import type { LedgerContext } from "./context.js";

/**
 * A batch's keys besides its hash and its rows (see keys.ts, and columns.ts for `:columns`): what
 * its expiry, the removal of that expiry when it reopens, and a purge must each cover, all of
 * them. The scripts that reopen a batch (transition.lua, add-rows.lua) take them at KEYS[3..11] in
 * this order (includes/reopen.lua): add a key here and there together.
 */
export function batchSideKeys(ctx: LedgerContext, batch: string): string[] {
  return [
    ctx.keys.order(batch),
    ctx.keys.unarchived(batch),
    ...ctx.keys.stateIndexes(batch),
    columnsKey(ctx, batch),
    ctx.keys.parked(batch),
  ];
}
