import { awaitReplica } from "../redis/keyspace.js";
import { batchSideKeys } from "./batch-keys.js";
import { batchGoneError, batchPurgingError } from "./cancel-mark.js";
import {
  encodeIncrements,
  encodeNewRow,
  encodeUpdate,
  finite,
  isStatus,
  pairsToHash,
  parseRow,
} from "./codec.js";
import { markColumnsKept, recordColumns } from "./columns.js";
import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";
import { afterReopen, housekeepingStep } from "./housekeeping.js";
import { checkName } from "./keys.js";
import { addRowsScript, transitionScript } from "./scripts/index.js";
import type { AddRowOutcome, AddRowsMeta, NewRow, TransitionInput, TransitionResult } from "./types.js";

/** How long the record of a new task waits for a replica on a cluster (WAIT), at most. */
const REPLICA_WAIT_MS = 1_000;

/** Rows per script call: large enough to amortise the round trip, small enough not to block Redis long. */
export const ADD_ROWS_CHUNK = 1000;

const OUTCOMES: readonly AddRowOutcome[] = ["new", "duplicate-queued", "duplicate", "held"];

/**
 * Records rows, one script call per chunk. Each row is created at most once; a chunk is atomic,
 * a call of several chunks is not (each row is still recorded exactly once). An id repeated
 * within the call is a plain `duplicate`: the job is added from its first occurrence.
 */
export async function addRows(
  ctx: LedgerContext,
  batch: string,
  rows: readonly NewRow[],
  meta: AddRowsMeta = {},
  chunkSize = ADD_ROWS_CHUNK,
): Promise<AddRowOutcome[]> {
  checkName("batch", batch);
  const budget = meta.budget === undefined ? "" : finite("budget", meta.budget);
  if (meta.submitWindow !== undefined && !(Number.isInteger(meta.submitWindow) && meta.submitWindow >= 1))
    throw new LedgerError("invalid_value", "submitWindow must be a whole number >= 1");
  const submitWindow = meta.submitWindow === undefined ? "" : String(meta.submitWindow);
  const outcomes: AddRowOutcome[] = new Array(rows.length);
  const seen = new Set<string>();
  // Everything is checked and encoded before the first write, so a bad row fails the call whole.
  const fresh: { index: number; keys: [string, string]; values: string[] }[] = [];
  rows.forEach((row, index) => {
    checkName("row id", row.id);
    if (seen.has(row.id)) outcomes[index] = "duplicate";
    else {
      seen.add(row.id);
      const keys: [string, string] = [ctx.keys.row(batch, row.id), ctx.keys.body(batch, row.id)];
      fresh.push({ index, keys, values: encodeNewRow(row) });
    }
  });
  // A call with no new rows still creates the batch and records its meta: one empty chunk.
  const chunks: (typeof fresh)[] = [];
  for (let start = 0; start < fresh.length; start += chunkSize)
    chunks.push(fresh.slice(start, start + chunkSize));
  if (chunks.length === 0) chunks.push([]);
  let reopened = false;
  // How long the batch's keys had left when a chunk reopened it (-1: no expiry).
  let left = -1;
  const columns = new Set<string>();
  let created = false;
  for (const [n, chunk] of chunks.entries()) {
    // The metadata column names first, then the rows that carry them (columns.ts); the first
    // call also says whether this call creates the batch.
    const names = newColumns(rows, chunk, columns);
    if (n === 0 || names.length > 0) {
      const existed = await recordColumns(ctx, batch, names, meta.existing === true);
      if (n === 0) created = !existed;
    }
    const keys = [ctx.keys.batch(batch), ...batchSideKeys(ctx, batch), ...chunk.flatMap(({ keys }) => keys)];
    const args = [
      batch,
      meta.file ?? "",
      budget,
      meta.noReuse === true ? "1" : "",
      submitWindow,
      meta.priority === undefined ? "" : String(meta.priority),
      meta.replacePriority === true ? "1" : "",
      meta.existing === true ? "1" : "",
      ...chunk.flatMap(({ values }) => values),
    ];
    const reply = (await addRowsScript.run(ctx.redis, keys, args, ctx.clock).catch((error: unknown) => {
      if (error instanceof Error && /\bPURGING\b/.test(error.message)) throw batchPurgingError(batch);
      if (error instanceof Error && /\bGONE\b/.test(error.message)) throw batchGoneError(batch);
      throw error;
    })) as number[];
    if (reply[0] === 1) {
      reopened = true;
      left = reply[1] ?? -1;
    }
    chunk.forEach(({ index }, i) => {
      outcomes[index] = OUTCOMES[reply[i + 2] ?? 2] ?? "duplicate";
    });
  }
  if (created) await markColumnsKept(ctx, batch);
  await indexBatch(ctx, batch);
  if (reopened) await afterReopen(ctx, batch, left);
  return outcomes;
}

/**
 * Enters the batch in the deployment's batch index, at its `createdAt`, unless it is there. Not in
 * the batch's script: the index is the deployment's key, in another Cluster slot. Written after
 * the batch exists, so a reader never drops it as expired; a process that dies in between leaves
 * the batch unlisted until the next `addRows` of it or the reconciler's `repairBatchIndex`.
 */
export async function indexBatch(ctx: LedgerContext, batch: string): Promise<boolean> {
  const createdAt = await ctx.redis.hget(ctx.keys.batch(batch), "createdAt");
  if (createdAt === null) return false;
  return (await ctx.redis.zadd(ctx.keys.batches, "NX", createdAt, batch)) === 1;
}

/** The metadata names of `chunk`'s rows not in `known`, in order of appearance; adds them to it. */
function newColumns(
  rows: readonly NewRow[],
  chunk: readonly { index: number }[],
  known: Set<string>,
): string[] {
  const names: string[] = [];
  for (const { index } of chunk) {
    for (const name of Object.keys(rows[index]!.metadata)) {
      if (known.has(name)) continue;
      known.add(name);
      names.push(name);
    }
  }
  return names;
}

/**
 * Moves one row atomically with its batch's counters. When the move finishes the batch and the
 * ledger has a TTL, the batch's keys are set to expire; when it reopens a finished batch, their
 * expiry is removed: the batch's hash and side keys in the script, the rows a first page here and
 * the rest by the sweep (a batch can hold a million rows), or all here when the expiry is near.
 */
export async function transition(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
  input: TransitionInput,
): Promise<TransitionResult> {
  for (const status of [...(input.from ?? []), ...(input.to ? [input.to] : [])]) {
    if (!isStatus(status)) throw new LedgerError("invalid_value", `unknown status ${JSON.stringify(status)}`);
  }
  const { set, del } = encodeUpdate(input.set);
  const incr = encodeIncrements(input.incr);
  const keys = [
    ctx.keys.batch(batch),
    ctx.keys.row(batch, rowId),
    ...batchSideKeys(ctx, batch),
    ctx.keys.body(batch, rowId),
    ctx.keys.reservedEnded(batch),
  ];
  const args: (string | number)[] = [
    input.from ? `,${input.from.join(",")},` : "",
    input.to ?? "",
    rowId,
    batch,
    input.addTaskId ?? "",
    (input.addTaskId && input.taskKey) || "",
    input.rowOnRefusal ? "1" : "",
    input.ifTask ?? "",
    input.settle ? finite("spent", input.settle.spent) : "",
    input.settle?.taskId ?? "",
    input.ifBatchCancelled ? "1" : "",
    set.length,
    ...set.flat(),
    del.length,
    ...del,
    incr.length,
    ...incr.flat(),
  ];
  // An empty `from` list matches nothing; the script reads '' as "any", so say it explicitly.
  if (input.from && input.from.length === 0) args[0] = ",,";
  if (input.settle && !(input.settle.spent >= 0))
    throw new LedgerError("invalid_value", "spent must be a non-negative number");
  const reply = (await transitionScript.run(ctx.redis, keys, args, ctx.clock)) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    unknown?,
    (string | null)?,
  ];
  const [ok, finished, reopened, left, feed, settled, parked, pairs, body] = reply;
  const row = pairs === undefined ? undefined : parseRow(batch, rowId, pairsToHash(pairs), body);
  // The row (`taskIds`, written by the script with the move) is the record a created task is
  // traced by (invariant 3); there is no taskId -> row map: webhooks carry the row's job key.
  // A task was paid for: on a cluster, its record is on a replica before the submit goes on. Also
  // when a record sent again finds its task already there (its first reply lost with the wait).
  const recorded = input.addTaskId !== undefined && (ok === 1 || row?.taskIds.includes(input.addTaskId));
  const unreplicated = recorded
    ? await awaitReplica(ctx.redis, ctx.keys.row(batch, rowId), REPLICA_WAIT_MS)
    : undefined;
  // The batch's expiry when it is one page (a larger one's is the reconciler's sweep's, whole:
  // housekeeping.ts), so no row's job walks the batch; one step of its removal on a reopen, all of
  // it when the expiry is near and the rows cannot wait for the sweep (afterReopen).
  if (reopened === 1) await afterReopen(ctx, batch, left);
  else if (finished === 1 && ctx.ttlMs !== undefined)
    await housekeepingStep(ctx, batch, ctx.ttlMs, { onlyLast: true });
  return {
    ok: ok === 1,
    row,
    finished: finished === 1,
    ...(feed === 1 ? { feed: true } : {}),
    ...(settled === 0 ? {} : { settled: settled === 1 ? "settled" : "already-settled", parked: parked > 0 }),
    ...(unreplicated ? { unreplicated } : {}),
  };
}
