import { type FlatHash, parseRow } from "./codec.js";
import type { LedgerContext } from "./context.js";
import type { RowRecord } from "./types.js";

/**
 * Reads rows of one batch by id: each row's hash and body (row-body.ts) in one pipeline, one
 * round trip (every key in the batch's hash tag: one Cluster slot). The answer is aligned with
 * `ids`: undefined for a row that does not exist (never added, purged or expired meanwhile).
 */
export async function readRows(
  ctx: LedgerContext,
  batch: string,
  ids: readonly string[],
): Promise<(RowRecord | undefined)[]> {
  if (ids.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const id of ids) {
    pipeline.hgetall(ctx.keys.row(batch, id));
    pipeline.get(ctx.keys.body(batch, id));
  }
  const replies = (await pipeline.exec()) ?? [];
  return ids.map((id, i) => {
    const [hashErr, hash] = replies[2 * i] ?? [new Error("no reply")];
    const [bodyErr, body] = replies[2 * i + 1] ?? [new Error("no reply")];
    if (hashErr) throw hashErr;
    if (bodyErr) throw bodyErr;
    // The two reads are not one atomic step: a row whose body is gone while its hash still has no
    // prompt of its own (every row written before bodies has one) was removed between them (a
    // purge, its expiry), so it reads as gone, never as a live row with an empty prompt.
    if (body === null && (hash as FlatHash).prompt === undefined) return undefined;
    return parseRow(batch, id, hash as FlatHash, body as string | null);
  });
}
