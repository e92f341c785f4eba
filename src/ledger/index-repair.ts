import { scanKeys } from "../redis/keyspace.js";
import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";
import { indexBatch } from "./writes.js";

const BATCH_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Puts back in the deployment's batch index every batch whose hash exists without its entry: the
 * index is written beside the batch's script, not in it (another Cluster slot), so a producer that
 * died between the two leaves its batch unlisted, and unswept by the reconciler, until this runs.
 * Walks the keyspace of every master (SCAN); returns the batches it put back.
 */
export async function repairBatchIndex(ctx: LedgerContext): Promise<string[]> {
  const { head, tail } = hashKeyShape(ctx);
  const repaired: string[] = [];
  await scanKeys(ctx.redis, `${head}*${tail}`, async (keys) => {
    for (const key of keys) {
      const batch = key.slice(head.length, key.length - tail.length);
      // A key of another deployment whose prefix starts like this one's: batch names hold no `:`.
      if (!BATCH_NAME.test(batch) || ctx.keys.batch(batch) !== key) continue;
      if (await indexBatch(ctx, batch)) repaired.push(batch);
    }
  });
  return repaired;
}

/** A batch hash key is `<head><batch><tail>` (keys.ts). */
function hashKeyShape(ctx: LedgerContext): { head: string; tail: string } {
  const probe = ctx.keys.batch("x");
  const at = probe.indexOf("x}");
  return { head: probe.slice(0, at), tail: probe.slice(at + 1) };
}

/**
 * The batches of this deployment still in the key layout before batches had their own Cluster
 * slot (`{<prefix>}:ledger:batch:<batch>`, indexed in `{<prefix>}:ledger:batches`). Their rows are
 * invisible to this version, so a worker or command refuses to start over them (`refuseOldLayout`).
 */
async function oldLayoutBatches(ctx: LedgerContext): Promise<string[]> {
  const oldIndex = `${ctx.keys.root}:batches`;
  const names = await ctx.redis.zrange(oldIndex, 0, -1);
  const live = await Promise.all(
    names.map(async (name) => (await ctx.redis.exists(`${ctx.keys.root}:batch:${name}`)) === 1),
  );
  return names.filter((_, i) => live[i]);
}

/** @throws LedgerError `old_layout` naming the batches and what to do, when there are any */
export async function refuseOldLayout(ctx: LedgerContext): Promise<void> {
  const batches = await oldLayoutBatches(ctx);
  if (batches.length === 0) return;
  const shown =
    batches.slice(0, 5).join(", ") + (batches.length > 5 ? `, and ${batches.length - 5} more` : "");
  throw new LedgerError(
    "old_layout",
    `this Redis holds ${batches.length} batch(es) of prefix ${JSON.stringify(ctx.keys.root.slice(1, ctx.keys.root.indexOf("}")))} in the key layout of an older kie-batch (${shown}), which this version cannot see. Finish or purge them with the version that enqueued them (its workers, then \`kie-batch purge <batch>\` once exported), or use another KIE_QUEUE_PREFIX for new batches; then remove the old index: redis-cli DEL '${ctx.keys.root}:batches'. See README, "Moving to a Redis Cluster".`,
  );
}
