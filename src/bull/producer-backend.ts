import { ledgerKeys, type ResultIndex } from "../ledger/index.js";
import type { ProducerBackend, ProducerLedger } from "../producer/types.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { jobKey, storedJobData } from "../worker/jobs.js";
import { feedSubmitWindow } from "../worker/submit-window.js";
import type { QueueSet } from "./queues.js";

export interface RedisBackendOptions {
  redis: Redis;
  ledger: ProducerLedger;
  /** The deployment's queue prefix (KIE_QUEUE_PREFIX), for reading ledger row keys. */
  queuePrefix: string;
  /**
   * Builds the stage queues, on first use only: constructing a BullMQ Queue writes its meta key,
   * and a dry run (or a file rejected by `--strict`) must leave Redis untouched.
   */
  queues: () => QueueSet;
  /** The deployment's result index, for a dry run's count of rows that would be reused. Absent: reuse is off. */
  results?: Pick<ResultIndex, "exists">;
  /**
   * KIE_SUBMIT_WINDOW: a batch this backend creates gets its submit jobs a window of this many rows
   * at a time (`AddRowsMeta.submitWindow`). @defaultValue undefined: every row gets its job at once
   */
  submitWindow?: number;
  /** Runs after the queues are closed, e.g. to quit a connection the backend was given to own. */
  onClose?: () => Promise<void>;
}

/** The producer's backend over one ioredis connection, the ledger and BullMQ's submit queue. */
export function createRedisBackend(options: RedisBackendOptions): ProducerBackend {
  const { redis, results, submitWindow } = options;
  // The window is recorded with the batch's first rows (the call that carries its meta).
  const ledger: ProducerLedger =
    submitWindow === undefined
      ? options.ledger
      : {
          ...options.ledger,
          // Every chunk names the window: it makes the batch window-managed only where it creates
          // it, and sets the size a window-managed batch already has again.
          addRows: (batch, rows, meta) =>
            options.ledger.addRows(batch, rows, meta === undefined ? meta : { ...meta, submitWindow }),
        };
  const keys = ledgerKeys(options.queuePrefix);
  let queueSet: QueueSet | undefined;
  const queues = (): QueueSet => {
    if (queueSet === undefined) {
      queueSet = options.queues();
      // An EventEmitter without an 'error' listener throws; failures still reject the calls.
      for (const queue of Object.values(queueSet.queues)) queue.on("error", () => {});
    }
    return queueSet;
  };
  return {
    ledger,
    async addSubmitJobs(batch, rowIds, priority) {
      const set = queues();
      // The same options as `QueueSet.addSubmit`, so a job looks the same whoever added it.
      const base = set.jobOptions("submit");
      await set.queues.submit.addBulk(
        rowIds.map((rowId) => {
          const data = storedJobData("submit", { batch, rowId, resubmit: 0 });
          return { name: "submit", data, opts: { ...base, jobId: jobKey(batch, rowId), priority } };
        }),
      );
    },
    async feedSubmitWindow(batch) {
      return feedSubmitWindow({ ledger: options.ledger, queues: queues() }, batch);
    },
    async rowsExist(batch, rowIds) {
      if (rowIds.length === 0) return [];
      // The order zset holds every row the batch has, frozen ones too (they have no row key).
      const seqs = await redis.zmscore(keys.order(batch), ...rowIds);
      return rowIds.map((_, i) => seqs[i] !== null && seqs[i] !== undefined);
    },
    ...(results === undefined ? {} : { resultsExist: (hashes: readonly string[]) => results.exists(hashes) }),
    async close() {
      await queueSet?.close().catch(() => undefined);
      await options.onClose?.();
    },
  };
}
