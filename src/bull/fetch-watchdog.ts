/**
 * The stage workers' fetch watchdog. On a Redis Cluster, BullMQ's fetch (its blocking connection,
 * a duplicate of the stage workers' Cluster) sometimes stops for good after the master holding the
 * queue's slot fails over: jobs wait and the worker, free slots in hand, takes none. Nothing in
 * BullMQ reports it, so a worker is judged by what it does: while its queue has jobs ready to run
 * (waiting or prioritized) and the worker has a free slot, it must take one within `stallMs`.
 * The decision is `FetchWatchdog` (a function of samples); `watchFetches` samples, and `runner.ts`
 * restarts the worker.
 */
import { Queue } from "bullmq";
import type { RedisClient as Redis } from "../redis/script.js";
import { bullPrefix, type Stage } from "../worker/jobs.js";

/**
 * Longer than BullMQ's own recovery of a stuck fetch (its watchdog abandons a blocking wait after
 * its timeout, at most 10 s, plus 1 s), so only a fetch BullMQ failed to recover is replaced.
 */
export const FETCH_WATCH = { stallMs: 15_000, everyMs: 3_000 };

/** One look at a stage: what its queue has ready and what this process holds and took. */
export interface FetchSample {
  /** When the sample was taken (ms). */
  at: number;
  /** Jobs of the queue ready to run now: waiting plus prioritized. */
  ready: number;
  /** Jobs this process's worker of the stage is running now. */
  inHand: number;
  /** When this process's worker of the stage last took a job (ms; its start when none yet). */
  lastTakenAt: number;
}

/**
 * Tells when a stage worker has starved in front of ready jobs for `stallMs`: every sample since
 * then saw ready jobs and a free slot, and the worker took no job meanwhile. A sample without
 * ready jobs or without a free slot starts the count again; so does a job taken.
 */
export class FetchWatchdog {
  /** The first sample of the current run of starving samples. */
  private since: number | undefined;

  constructor(
    private readonly stallMs: number,
    private readonly concurrency: number,
  ) {}

  /** How long the worker has starved as of `sample` (0 when it does not), or `restart`. */
  observe(sample: FetchSample): { restart: boolean; starvedMs: number } {
    if (sample.ready <= 0 || sample.inHand >= this.concurrency) {
      this.since = undefined;
      return { restart: false, starvedMs: 0 };
    }
    this.since ??= sample.at;
    const starvedMs = Math.max(0, sample.at - Math.max(this.since, sample.lastTakenAt));
    if (starvedMs < this.stallMs) return { restart: false, starvedMs };
    this.since = undefined;
    return { restart: true, starvedMs };
  }

  /** Nothing is known now (the queue could not be counted): the count starts again. */
  reset(): void {
    this.since = undefined;
  }
}

/** What a replacement was decided on: the last sample's numbers, for the log. */
export interface Starved {
  /** How long the worker took no job while jobs were ready and it had a free slot (ms). */
  starvedMs: number;
  /** Jobs of the queue ready to run at the last sample (waiting plus prioritized). */
  ready: number;
  /** Jobs the worker was running at the last sample, of `concurrency`. */
  inHand: number;
  concurrency: number;
}

export interface FetchWatchOptions {
  stages: readonly Stage[];
  concurrency: Record<Stage, number>;
  /** How long a worker may starve in front of ready jobs before it is restarted. */
  stallMs: number;
  /** How often each stage is sampled. */
  everyMs: number;
  /** Jobs of the stage's queue ready to run now (waiting plus prioritized). */
  ready: (stage: Stage) => Promise<number>;
  /** What this process's worker of the stage holds and when it last took a job. */
  fetchOf: (stage: Stage) => { inHand: number; lastTakenAt: number };
  /** Replaces the stage's worker; the watchdog's count starts again after it. */
  restart: (stage: Stage, starved: Starved) => void;
  now?: () => number;
}

/**
 * Samples every stage each `everyMs` (one count of the queue per stage, a sample at a time, never
 * overlapping) and calls `restart` for a starving worker. `stop()` ends it; a sample under way is
 * ignored once stopped.
 */
export function watchFetches(options: FetchWatchOptions): { stop(): void } {
  const now = options.now ?? Date.now;
  const dogs = new Map(
    options.stages.map((stage) => [stage, new FetchWatchdog(options.stallMs, options.concurrency[stage])]),
  );
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    for (const [stage, dog] of dogs) {
      const ready = await options.ready(stage).catch(() => undefined);
      if (stopped) return;
      if (ready === undefined) {
        dog.reset();
        continue;
      }
      const { inHand, lastTakenAt } = options.fetchOf(stage);
      const verdict = dog.observe({ at: now(), ready, inHand, lastTakenAt });
      if (verdict.restart) {
        const { starvedMs } = verdict;
        options.restart(stage, { starvedMs, ready, inHand, concurrency: options.concurrency[stage] });
      }
    }
  };
  const schedule = () => {
    timer = setTimeout(() => {
      void tick().finally(() => {
        if (!stopped) schedule();
      });
    }, options.everyMs);
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export interface ReadyCounts {
  /** Jobs of the stage's queue ready to run now: waiting plus prioritized (one script). */
  ready(stage: Stage): Promise<number>;
  close(): Promise<void>;
}

/** Counts through `connection` (shared: closing the counts leaves it open). */
export function readyCounts(connection: Redis, queuePrefix: string): ReadyCounts {
  const queues = new Map<Stage, Queue>();
  const queueOf = (stage: Stage) => {
    let queue = queues.get(stage);
    if (!queue) {
      // Counts only: without skipMetasUpdate this Queue would write its default options to the
      // queue's meta (events maxLen 10,000 over queues.ts's 100: ~800 B per archived row).
      queue = new Queue(stage, { connection, prefix: bullPrefix(queuePrefix, stage), skipMetasUpdate: true });
      queue.on("error", () => {}); // a failed count skips the sample (watchFetches)
      queues.set(stage, queue);
    }
    return queue;
  };
  return {
    ready: (stage) => queueOf(stage).getJobCountByTypes("waiting", "prioritized"),
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
    },
  };
}
