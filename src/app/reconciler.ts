import { randomUUID } from "node:crypto";
import { periodic } from "../alerts/periodic.js";
import type { QueueSet } from "../bull/queues.js";
import { reconcileJobs } from "../bull/reconcile-jobs.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { serverClock } from "../redis/server-clock.js";
import { freezeAll, housekeepAll } from "../worker/housekeep.js";
import {
  RECONCILE_SETTLE_MS,
  type ReconcileReport,
  reconcileAll,
  reconcileBatch,
} from "../worker/reconcile.js";

/** How often a reconciler looks for batches missing from the batch index (a keyspace walk). */
const INDEX_REPAIR_EVERY_MS = 60 * 60_000;

/** How long a closing reconciler waits for its lease's release before leaving it to lapse. */
const LEASE_RELEASE_WAIT_MS = 2_000;

/** The lease's name: one reconciler of the deployment sweeps at a time. */
const RECONCILE_LEASE = "reconcile";

/**
 * The Redis server's clock, synced, for a retry outside a worker (`kie-batch retry`, the
 * dashboard's): the retried rows' stamps and its sweep's cutoffs. A failed read leaves the local
 * clock.
 */
export async function syncedSweepClock(redis: Redis): Promise<SweepClock> {
  const clock = serverClock(redis);
  await clock.sync().catch(() => {});
  // Synced once: the retry's sweep (reconcileNow) reads no second TIME.
  return { now: () => clock.now() };
}

/** A clock, and for the server's clock, its sync (a TIME read), awaited before each sweep. */
export type SweepClock = Pick<Clock, "now"> & { sync?(): Promise<void> };

/** Syncs the sweep's clock with the server's; a failed read is logged and the last offset kept. */
async function syncClock(clock: SweepClock, log: Logger): Promise<void> {
  try {
    await clock.sync?.();
  } catch (error) {
    log.warn(
      { err: error },
      "reconciler: the Redis server's clock could not be read; the last reading is used",
    );
  }
}

export interface ReconcilerOptions {
  redis: Redis;
  ledger: Ledger;
  queues: QueueSet;
  /**
   * The sweep's "now", compared with the rows' stamps (the Redis server's clock): in a worker, a
   * `ServerClock` (redis/server-clock.ts), synced before each sweep; tests give a fake one.
   */
  clock: SweepClock;
  log: Logger;
  /** KIE_RECONCILE_EVERY: how often the fleet sweeps (one worker, by lease). */
  everyMs: number;
  /** Rows younger in their state than this are left alone. @defaultValue RECONCILE_SETTLE_MS */
  settleMs?: number;
  /** Called after each sweep this worker ran, housekeeping included (tests await it). */
  onSweep?: (reports: ReconcileReport[]) => void;
}

export interface Reconciler {
  /**
   * Tells the sweep in progress to stop at its next page and starts no other; returns at once, so
   * the stage workers can start closing while the sweep winds down.
   */
  stop(): void;
  /** `stop()`, waits for the sweep in progress (a page at most), then lets the lease go if it holds it. */
  close(): Promise<void>;
}

/**
 * Starts the periodic sweep in a worker. Every worker tries; the one that holds the lease (taken
 * for `everyMs`, renewed by its holder between batches and pages) sweeps, the others skip, so the
 * fleet sweeps about once per period whatever its size; a holder that closes lets the lease go, and
 * one that dies lets it lapse to another worker within one period.
 */
export function startReconciler(options: ReconcilerOptions): Reconciler {
  const owner = randomUUID();
  const { ledger, log } = options;
  // A worker closing stops its sweep between two pages: a sweep of a million rows must not hold
  // the shutdown (and the stage workers' close) until its end. A closed worker lets its lease go.
  let closing = false;
  const keepGoing = async () =>
    !closing && (await ledger.claimLease(RECONCILE_LEASE, owner, options.everyMs));
  const deps = {
    ledger,
    jobs: reconcileJobs(options.queues, options.redis),
    clock: options.clock,
    log,
    moneyCursors: new Map<string, string>(),
    ...(options.settleMs === undefined ? {} : { settleMs: options.settleMs }),
  };
  // A batch whose index entry was lost (its producer died between the batch's script and the
  // entry: two Cluster slots) is invisible to the sweep until it is put back. Finding it walks the
  // keyspace (SCAN on every master), so this worker does it at its first sweep and then at most
  // once per INDEX_REPAIR_EVERY_MS, not every period.
  let repairedAt = Number.NEGATIVE_INFINITY;
  const repairIndex = async () => {
    if (options.clock.now() - repairedAt < INDEX_REPAIR_EVERY_MS) return;
    repairedAt = options.clock.now();
    try {
      const unlisted = await ledger.repairIndex();
      if (unlisted.length > 0)
        log.warn(
          { batches: unlisted },
          `reconciler: put ${unlisted.length} batch(es) back in the batch index`,
        );
    } catch (error) {
      log.warn({ err: error }, "reconciler: the batch index could not be checked; the sweep goes on");
    }
  };
  const sweep = async () => {
    if (!(await keepGoing())) return;
    await syncClock(options.clock, log);
    await repairIndex();
    let reports: ReconcileReport[] = [];
    try {
      reports = await reconcileAll(deps, keepGoing);
    } catch (error) {
      // reconcileAll passes over a failing batch itself; this is the batch list that failed.
      log.warn({ err: error }, "reconciler: the batches could not be listed; housekeeping still runs");
    }
    // Then the batches' expiry (or its removal) the transitions left to finish, page by page:
    // run whatever the reconcile did, or a batch that keeps failing would keep every batch unexpired.
    // A batch whose housekeeping fails (a Redis error) must not keep the others from being
    // frozen: the failure is logged, the next sweep tries again.
    await housekeepAll({ ledger, log }, keepGoing).catch((error: unknown) => {
      log.warn({ err: error }, "reconciler: housekeeping failed; freezing still runs");
    });
    // Then the archived rows that settled since the last sweep are frozen (ledger/freeze.ts): a
    // page of 64 rows in one compressed key. Each batch's walk resumes where it stopped.
    await freezeAll(
      { ledger, log, clock: options.clock },
      options.settleMs ?? RECONCILE_SETTLE_MS,
      keepGoing,
    );
    options.onSweep?.(reports);
  };
  const timer = periodic(sweep, options.everyMs, log, "reconciler sweep");
  const stop = () => {
    closing = true;
  };
  return {
    stop,
    close: async () => {
      stop();
      await timer.stop();
      // The sweep has ended (no claim or renewal is in flight): the lease is let go if it is still
      // ours, so another worker sweeps at its next tick instead of when it lapses (up to everyMs:
      // KIE_RECONCILE_EVERY=10m left the fleet unswept for 10 minutes after a clean stop). A
      // Redis that is gone leaves it to lapse, as a worker that dies does: the worker's connection
      // would queue the command until it came back, so it is sent only while connected, and
      // waited for briefly.
      if (options.redis.status !== "ready") return;
      let wait: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((resolve) => {
        wait = setTimeout(() => resolve("late"), LEASE_RELEASE_WAIT_MS);
      });
      try {
        const released = await Promise.race([ledger.releaseLease(RECONCILE_LEASE, owner), late]);
        if (released === "late")
          log.warn(
            { waitedMs: LEASE_RELEASE_WAIT_MS },
            "reconciler: the lease release got no answer; it lapses by itself",
          );
      } catch (error) {
        log.warn({ err: error }, "reconciler: the lease could not be released; it lapses by itself");
      } finally {
        clearTimeout(wait);
      }
    },
  };
}

/** One batch's sweep now, for `kie-batch retry` (no lease: it is idempotent, and asked for). */
export async function reconcileNow(
  parts: Pick<ReconcilerOptions, "redis" | "ledger" | "queues" | "clock" | "log" | "settleMs">,
  batch: string,
): Promise<ReconcileReport> {
  const jobs = reconcileJobs(parts.queues, parts.redis);
  await syncClock(parts.clock, parts.log);
  return reconcileBatch(
    {
      ledger: parts.ledger,
      jobs,
      clock: parts.clock,
      log: parts.log,
      ...(parts.settleMs === undefined ? {} : { settleMs: parts.settleMs }),
    },
    batch,
  );
}
