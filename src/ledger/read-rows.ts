import { type FlatHash, parseRow, parseRowState } from "./codec.js";
import type { LedgerContext } from "./context.js";
import { readFrozen } from "./frozen.js";
import type { RowRecord, RowState } from "./types.js";

/**
 * Reads rows of one batch by id: each row's hash and body (row-body.ts) sent together, one
 * round trip (every key in the batch's hash tag: one Cluster slot); rows with neither from their
 * frozen page, if they have one (frozen.ts: two more round trips for the whole call).
 * The answer is aligned with `ids`: undefined for a row that does not exist (never added, purged
 * or expired meanwhile).
 */
export async function readRows(
  ctx: LedgerContext,
  batch: string,
  ids: readonly string[],
): Promise<(RowRecord | undefined)[]> {
  if (ids.length === 0) return [];
  const replies = await readKeys(ctx, batch, ids);
  const keyless: string[] = [];
  const rows = ids.map((id, i) => {
    const [hashErr, hash] = replies[2 * i] ?? [new Error("no reply")];
    const [bodyErr, body] = replies[2 * i + 1] ?? [new Error("no reply")];
    if (hashErr) throw hashErr;
    if (bodyErr) throw bodyErr;
    // The two reads are not one atomic step: a row whose body is gone while its hash still has no
    // prompt of its own (every row written before bodies has one) was removed between them (a
    // purge, its expiry, or its freezing), so it is never read as a live row with an empty prompt.
    if (body === null && (hash as FlatHash).prompt === undefined) {
      keyless.push(id);
      return undefined;
    }
    return parseRow(batch, id, hash as FlatHash, body as string | null);
  });
  // Rows with no keys are rare on the stages' path (a purged row, a frozen one read again), so
  // their pages are looked for only then. A row frozen between the two reads above had its page
  // written before its keys went (one script), so reading the pages after is enough.
  if (keyless.length === 0) return rows;
  const frozen = await readFrozen(ctx, batch, keyless);
  if (frozen.size === 0) return rows;
  return ids.map((id, i) => {
    const record = rows[i] === undefined ? frozen.get(id) : undefined;
    return record ? parseRow(batch, id, record.hash, record.body) : rows[i];
  });
}

/**
 * One row's state, read from its hash alone (one command, no body): the status, tasks, counters
 * and timestamps. The hash is one key, so the answer is one moment's (no race between two reads
 * to guard against, as `readRows` has). A row with no hash is looked for in its frozen page.
 */
export async function readRowState(
  ctx: LedgerContext,
  batch: string,
  id: string,
): Promise<RowState | undefined> {
  const hash = (await ctx.redis.hgetall(ctx.keys.row(batch, id))) as FlatHash;
  if (hash.status !== undefined) return parseRowState(batch, id, hash);
  const frozen = (await readFrozen(ctx, batch, [id])).get(id);
  return frozen ? parseRowState(batch, id, frozen.hash) : undefined;
}

/**
 * Rows' states by id (their hashes alone, one pipeline; no body: no prompt, params or images),
 * aligned with `ids`; a row with no hash from its frozen page, undefined when it has neither.
 * For walks that decide on the state alone (the reconciler's, over every row with a job).
 */
export async function readRowStates(
  ctx: LedgerContext,
  batch: string,
  ids: readonly string[],
): Promise<(RowState | undefined)[]> {
  if (ids.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const id of ids) pipeline.hgetall(ctx.keys.row(batch, id));
  const hashes = ((await pipeline.exec()) ?? []).map(([error, hash]) => {
    if (error) throw error;
    return hash as FlatHash;
  });
  const keyless = ids.filter((_, i) => hashes[i]?.status === undefined);
  const frozen = keyless.length === 0 ? new Map() : await readFrozen(ctx, batch, keyless);
  return ids.map((id, i) => {
    const hash = hashes[i]?.status === undefined ? frozen.get(id)?.hash : hashes[i];
    return hash ? parseRowState(batch, id, hash) : undefined;
  });
}

type Replies = [Error | null, unknown][];

/**
 * Each row's hash and body, in that order, sent together. One row (the stages' read, three a row
 * of the pipeline) goes as two plain commands in the same tick rather than a pipeline: an ioredis
 * pipeline copies every command the client has defined (BullMQ's ~40 scripts, twice) onto
 * itself when made, which cost more than the two reads (issue 10's profile).
 */
async function readKeys(ctx: LedgerContext, batch: string, ids: readonly string[]): Promise<Replies> {
  if (ids.length === 1) {
    const id = ids[0]!;
    const [hash, body] = await Promise.all([
      ctx.redis.hgetall(ctx.keys.row(batch, id)),
      ctx.redis.get(ctx.keys.body(batch, id)),
    ]);
    return [
      [null, hash],
      [null, body],
    ];
  }
  const pipeline = ctx.redis.pipeline();
  for (const id of ids) {
    pipeline.hgetall(ctx.keys.row(batch, id));
    pipeline.get(ctx.keys.body(batch, id));
  }
  return ((await pipeline.exec()) ?? []) as Replies;
}
