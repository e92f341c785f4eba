import { LedgerError } from "./errors.js";
import { INDEXED_STATUSES, type IndexedStatus } from "./types.js";

/**
 * Key names, placed for Redis Cluster. Each batch's keys (its hash, rows, zsets) start with
 * `{<prefix>:<batch>}:ledger`: one hash tag per batch, so a script may touch a batch and its rows
 * together, and batches spread over the cluster's masters. The deployment's own keys (the batch
 * index, leases) start with `{<prefix>}:ledger`. No script or pipeline touches keys of two tags:
 * the batch index is written beside the batch's script, not in it (writes.ts), and repaired from
 * the batches themselves (index-repair.ts).
 */
export interface LedgerKeys {
  /** `{prefix}:ledger`: the deployment's keys. */
  readonly root: string;
  /** ZSET batch -> createdAt ms: every batch of the deployment (`{prefix}:ledger:index`). */
  readonly batches: string;
  /** `{prefix:batch}:ledger`: what every key of one batch starts with. */
  batchRoot(batch: string): string;
  /** HASH of a batch's meta and counters. */
  batch(batch: string): string;
  /** ZSET rowId -> seq, insertion order. */
  order(batch: string): string;
  /** ZSET rowId -> completedAt of the rows in `archiving`. */
  unarchived(batch: string): string;
  /**
   * ZSET rowId -> the ms the row entered `status`, for the states in `INDEXED_STATUSES`: walking
   * the rows in one state costs the rows in that state, not the batch.
   */
  stateIndex(batch: string, status: IndexedStatus): string;
  /** Every state index key of a batch, in `INDEXED_STATUSES` order. */
  stateIndexes(batch: string): string[];
  /**
   * ZSET rowId -> seq of the queued rows parked over the budget (no job while they wait): a
   * wake takes them in manifest order.
   */
  parked(batch: string): string;
  /**
   * SET of the rows that ended (cancelled, failed) while holding a credit reservation, or that
   * reserved while not queued: each such reservation is its holder's to give back, and a crash in
   * that step would keep it from the budget for good. The reconciler's sweep looks at them
   * (`worker/reconcile-money.ts`) and gives back what nothing will; normally empty. Not a side key:
   * its own TTL (renewed at each add), and `purge` unlinks it.
   */
  reservedEnded(batch: string): string;
  /** STRING owner of a fleet-wide lease (one holder at a time), e.g. the reconciler's. */
  lease(name: string): string;
  /**
   * HASH of one row's small fields, each value at most 64 bytes (Redis's default
   * `hash-max-listpack-value`), so the hash stays a listpack: what is longer is in `body`.
   */
  row(batch: string, rowId: string): string;
  /**
   * STRING beside the row hash (row-body.ts): the row's prompt, params and metadata, then its
   * images, error and reusedFrom. Not under `:row:`, so nothing that walks row keys takes it for
   * one; created, expired, persisted and deleted with its row. Rows written before 2026-12-06 have
   * none (their hash holds those fields).
   */
  body(batch: string, rowId: string): string;
  /**
   * STRING: one frozen page of the batch (frozen.ts): the archived rows with seq in
   * [page * FROZEN_PAGE_ROWS, (page + 1) * FROZEN_PAGE_ROWS), their hashes and bodies compressed
   * into one value once they are settled. A frozen row has no `row` or `body` key; it keeps its
   * place in `order`, through which its page is found.
   */
  frozen(batch: string, page: number): string;
  /**
   * STRING `<batch>/<rowId>` for a provider taskId, its own hash tag: the task map that versions
   * before 2026-12-06 wrote after each create. Nothing writes or reads it now (a task is traced by
   * its row's `taskIds`); `purge` still deletes a batch's leftovers, the rest expire on their own
   * 15-day TTL.
   */
  task(taskId: string): string;
  /**
   * STRING: the deployment's result index entry of one request hash asked of one API flavour
   * (result-index.ts). The index is spread over 16 hash tags `{prefix:reuse:results:<h>}`, `h` the
   * hash's first hex digit (no batch name holds a colon: never a batch's tag), so a Cluster holds
   * it on several masters: an entry is only ever touched alone (a dry run pipelines per tag).
   */
  result(requestHash: string, flavor: string): string;
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const PREFIX = /^[^{}\s*?[\]\\]{1,64}$/;

export function ledgerKeys(prefix: string): LedgerKeys {
  if (!PREFIX.test(prefix)) {
    throw new LedgerError("invalid_name", `invalid queue prefix ${JSON.stringify(prefix)}`);
  }
  const root = `{${prefix}}:ledger`;
  const of = (batch: string) => `{${prefix}:${checkName("batch", batch)}}:ledger`;
  return {
    root,
    batches: `${root}:index`,
    batchRoot: of,
    batch: (batch) => `${of(batch)}:batch`,
    order: (batch) => `${of(batch)}:order`,
    unarchived: (batch) => `${of(batch)}:unarchived`,
    stateIndex: (batch, status) => `${of(batch)}:state:${status}`,
    stateIndexes: (batch) => INDEXED_STATUSES.map((status) => `${of(batch)}:state:${status}`),
    parked: (batch) => `${of(batch)}:parked`,
    reservedEnded: (batch) => `${of(batch)}:reserved-ended`,
    lease: (name) => `${root}:lease:${checkName("lease", name)}`,
    row: (batch, rowId) => `${of(batch)}:row:${checkName("row id", rowId)}`,
    body: (batch, rowId) => `${of(batch)}:body:${checkName("row id", rowId)}`,
    frozen: (batch, page) => {
      if (!Number.isSafeInteger(page) || page < 0) throw new RangeError(`invalid frozen page ${page}`);
      return `${of(batch)}:frozen:${page}`;
    },
    task: (taskId) => `{${prefix}:task:${checkTaskId(taskId)}}`,
    result: (hash, flavor) =>
      `${resultTag(prefix, checkRequestHash(hash))}:${checkName("API flavour", flavor)}:${hash}`,
  };
}

/** Batch names and row ids end up in keys and BullMQ job ids: `[A-Za-z0-9._-]` only, never `/`. */
export function checkName(what: string, value: string): string {
  if (!NAME.test(value)) {
    throw new LedgerError("invalid_name", `invalid ${what} ${JSON.stringify(value)}: use [A-Za-z0-9._-]`);
  }
  return value;
}

function checkTaskId(taskId: string): string {
  if (taskId.length === 0 || taskId.length > 256) {
    throw new LedgerError("invalid_name", `invalid task id ${JSON.stringify(taskId)}`);
  }
  return taskId;
}

/** The hash tag of a request hash's result index entry: one of 16, by its first hex digit. */
function resultTag(prefix: string, requestHash: string): string {
  return `{${prefix}:reuse:results:${requestHash.slice(0, 1)}}`;
}

function checkRequestHash(hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    throw new LedgerError("invalid_name", `invalid request hash ${JSON.stringify(hash)}`);
  }
  return hash;
}
