import type { QueueSet } from "../bull/queues.js";
import type { Logger } from "../core/logger.js";
import type { Fleet, PauseState } from "../fleet/index.js";
import { PAUSE_KINDS } from "../fleet/index.js";
import { type BatchSummary, type Ledger, STATUSES } from "../ledger/index.js";
import { STAGES, type Stage } from "../worker/jobs.js";
import type { WorkerMetrics } from "./registry.js";

/** Batches that get series of their own (newest first): the label `batch` stays bounded. */
const MAX_BATCH_SERIES = 20;
/** A scrape that cannot read Redis within this gives up (the worker's connection waits forever). */
const SCRAPE_TIMEOUT_MS = 5_000;
/**
 * BullMQ job states reported per stage queue. Not "completed": jobs are removed on completion (the
 * ledger is the record), so it stays 0; nor "waiting-children": no stage uses flows.
 */
const JOB_STATES = ["waiting", "prioritized", "active", "delayed", "failed"] as const;

/** What the fleet-wide gauges read, as small functions (a test fake is an object literal). */
export interface StateSource {
  inFlight(): Promise<number>;
  pause(): Promise<PauseState | null>;
  backoffRemainingMs(): Promise<number>;
  listBatches(): Promise<BatchSummary[]>;
  oldestUnarchived(batch: string): Promise<{ rowId: string; completedAt: number } | undefined>;
  jobCounts(stage: Stage): Promise<Record<string, number>>;
  /** The pause of each of the worker's keys, by short hash and account name (several keys). */
  keyPauses?(): Promise<{ key: string; account: string; pause: PauseState | null }[]>;
  now(): number;
}

export function stateSourceOf(parts: {
  fleet: Pick<Fleet, "inFlight" | "pause" | "backoff">;
  ledger: Pick<Ledger, "listBatches" | "oldestUnarchived">;
  queues: Pick<QueueSet, "queues">;
  /** The worker's keys (never the keys themselves: their short hashes). */
  keys?: readonly { id: string; account: string; fleet: Pick<Fleet, "pause"> }[];
}): StateSource {
  const keys = parts.keys ?? [];
  return {
    keyPauses: () =>
      Promise.all(
        keys.map(async (k) => ({ key: k.id, account: k.account, pause: await k.fleet.pause.get() })),
      ),
    inFlight: () => parts.fleet.inFlight.count(),
    pause: () => parts.fleet.pause.get(),
    backoffRemainingMs: () => parts.fleet.backoff.remaining(),
    listBatches: () => parts.ledger.listBatches(),
    oldestUnarchived: (batch) => parts.ledger.oldestUnarchived(batch),
    jobCounts: (stage) => parts.queues.queues[stage].getJobCounts(...JOB_STATES),
    now: () => Date.now(),
  };
}

interface StateSnapshot {
  inFlight: number;
  pause: PauseState | null;
  keyPauses: { key: string; account: string; pause: PauseState | null }[];
  backoffRemainingMs: number;
  batches: BatchSummary[];
  /** Provider completion time of the oldest image still to archive, across batches. */
  oldestUnarchivedAt: number | undefined;
  jobCounts: Record<Stage, Record<string, number>>;
  now: number;
}

async function readState(source: StateSource): Promise<StateSnapshot> {
  const [inFlight, pause, backoffRemainingMs, batches, counts, keyPauses] = await Promise.all([
    source.inFlight(),
    source.pause(),
    source.backoffRemainingMs(),
    source.listBatches(),
    Promise.all(STAGES.map((stage) => source.jobCounts(stage))),
    source.keyPauses?.() ?? [],
  ]);
  // Only batches with rows in `archiving` have anything waiting (as `status` reads it).
  const oldest = await Promise.all(
    batches.filter((b) => b.archiving > 0).map((b) => source.oldestUnarchived(b.batch)),
  );
  const times = oldest.flatMap((o) => (o ? [o.completedAt] : []));
  return {
    inFlight,
    pause,
    keyPauses,
    backoffRemainingMs,
    batches,
    oldestUnarchivedAt: times.length > 0 ? Math.min(...times) : undefined,
    jobCounts: Object.fromEntries(
      STAGES.map((stage, i) => [stage, counts[i] ?? {}]),
    ) as StateSnapshot["jobCounts"],
    now: source.now(),
  };
}

/** Writes a snapshot into the gauges, dropping series that are gone (a batch past the newest 20). */
function applyState(metrics: WorkerMetrics, state: StateSnapshot): void {
  metrics.inFlight.set(state.inFlight);
  for (const kind of PAUSE_KINDS) metrics.paused.set({ kind }, state.pause?.kind === kind ? 1 : 0);
  metrics.pausedSince.set(state.pause ? state.pause.since / 1000 : 0);
  for (const { key, account, pause } of state.keyPauses) {
    for (const kind of PAUSE_KINDS)
      metrics.keyPaused.set({ key, account, kind }, pause?.kind === kind ? 1 : 0);
  }
  metrics.backoffRemaining.set(state.backoffRemainingMs / 1000);
  metrics.oldestUnarchivedAge.set(
    state.oldestUnarchivedAt === undefined ? 0 : Math.max(0, state.now - state.oldestUnarchivedAt) / 1000,
  );
  metrics.queueJobs.reset();
  for (const stage of STAGES) {
    for (const jobState of JOB_STATES) {
      metrics.queueJobs.set({ stage, state: jobState }, state.jobCounts[stage][jobState] ?? 0);
    }
  }
  const finished = state.batches.filter((b) => b.finishedAt !== undefined).length;
  metrics.batches.set({ state: "finished" }, finished);
  metrics.batches.set({ state: "unfinished" }, state.batches.length - finished);
  metrics.batchRows.reset();
  metrics.batchCreditsSpent.reset();
  for (const batch of state.batches.slice(0, MAX_BATCH_SERIES)) {
    for (const status of STATUSES) metrics.batchRows.set({ batch: batch.batch, status }, batch[status]);
    metrics.batchCreditsSpent.set({ batch: batch.batch }, batch.creditsSpent);
  }
}

function clearState(metrics: WorkerMetrics): void {
  for (const gauge of [
    metrics.inFlight,
    metrics.paused,
    metrics.keyPaused,
    metrics.pausedSince,
    metrics.backoffRemaining,
    metrics.oldestUnarchivedAge,
    metrics.queueJobs,
    metrics.batches,
    metrics.batchRows,
    metrics.batchCreditsSpent,
  ]) {
    gauge.reset();
  }
}

/**
 * Makes every scrape read the fleet's state from Redis first: once per scrape however many gauges
 * ask, with a deadline. A read that fails or times out leaves the fleet-wide gauges empty (no
 * stale value pretends to be current), counts a scrape error, and the scrape still answers.
 */
export function collectFleetState(
  metrics: WorkerMetrics,
  source: StateSource,
  options: { log?: Logger; timeoutMs?: number } = {},
): void {
  const timeoutMs = options.timeoutMs ?? SCRAPE_TIMEOUT_MS;
  let current: Promise<void> | undefined;

  async function refresh(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const state = await Promise.race([
        readState(source),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer from Redis within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      applyState(metrics, state);
    } catch (error) {
      clearState(metrics);
      metrics.scrapeErrors.inc();
      options.log?.warn({ err: error }, "metrics: could not read the fleet's state");
    } finally {
      clearTimeout(timer);
    }
  }

  // prom-client starts every gauge's collect in the same tick of a scrape: they share the read in
  // flight, and the next scrape reads afresh.
  metrics.onScrape(() => {
    current ??= refresh().finally(() => {
      current = undefined;
    });
    return current;
  });
}
