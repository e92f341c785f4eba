import { LedgerError } from "./errors.js";
import { INDEXED_STATUSES, type IndexedStatus } from "./types.js";

/**
 * Key names. Every ledger key starts with `{<prefix>}:ledger`: the hash tag puts all of them in one
 * Redis Cluster slot, so one Lua script may touch the batch, its rows and the task map together.
 */
export interface LedgerKeys {
  /** `{prefix}:ledger` */
  readonly root: string;
  /** ZSET batch -> createdAt ms. */
  readonly batches: string;
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
  /** STRING owner of a fleet-wide lease (one holder at a time), e.g. the reconciler's. */
  lease(name: string): string;
  /** HASH of one row's flat fields. */
  row(batch: string, rowId: string): string;
  /** STRING `<batch>/<rowId>` for a provider taskId. */
  task(taskId: string): string;
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const PREFIX = /^[^{}\s*?[\]\\]{1,64}$/;

export function ledgerKeys(prefix: string): LedgerKeys {
  if (!PREFIX.test(prefix)) {
    throw new LedgerError("invalid_name", `invalid queue prefix ${JSON.stringify(prefix)}`);
  }
  const root = `{${prefix}}:ledger`;
  return {
    root,
    batches: `${root}:batches`,
    batch: (batch) => `${root}:batch:${checkName("batch", batch)}`,
    order: (batch) => `${root}:batch:${checkName("batch", batch)}:order`,
    unarchived: (batch) => `${root}:batch:${checkName("batch", batch)}:unarchived`,
    stateIndex: (batch, status) => `${root}:batch:${checkName("batch", batch)}:state:${status}`,
    stateIndexes: (batch) =>
      INDEXED_STATUSES.map((status) => `${root}:batch:${checkName("batch", batch)}:state:${status}`),
    parked: (batch) => `${root}:batch:${checkName("batch", batch)}:parked`,
    lease: (name) => `${root}:lease:${checkName("lease", name)}`,
    row: (batch, rowId) => `${root}:row:${checkName("batch", batch)}/${checkName("row id", rowId)}`,
    task: (taskId) => `${root}:task:${checkTaskId(taskId)}`,
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
