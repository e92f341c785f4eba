/**
 * The plain-BullMQ side of the pipeline figures: `bench/baseline-worker.mjs` processes (create,
 * status until done, download into a file) fed by `addBulk`, on the same simulator and Redis.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { rowParams } from "../manifest-file.js";
import type { BenchContext } from "./context.js";
import type { ContextSwitches } from "./proc-stats.js";
import { type BenchProcess, ROOT, spawnNode } from "./processes.js";

export interface PipelineRun {
  rows: number;
  seconds: number;
  cpuMs: number;
  /** cpuMs split into user mode and kernel time (system calls). */
  cpuSplitMs: { user: number; system: number };
  /** Context switches of the worker processes' threads during the run. */
  contextSwitches: ContextSwitches;
  /** Peak RSS of each worker process, MB. */
  peakRssMb: number[];
}

export async function runBaselinePipeline(
  ctx: BenchContext,
  simUrl: string,
  options: { rows: number; workers: number; promptLength: number; concurrency?: number },
): Promise<PipelineRun> {
  const prefix = ctx.newPrefix("baseline");
  const outDir = join(ctx.dir, prefix);
  await mkdir(outDir, { recursive: true });
  const env = {
    REDIS_URL: ctx.redisUrl,
    BASELINE_PREFIX: prefix,
    SIM_URL: simUrl,
    OUT_DIR: outDir,
    CONCURRENCY: String(options.concurrency ?? 16),
  };
  const workers: BenchProcess[] = Array.from({ length: options.workers }, (_, i) =>
    spawnNode(`baseline worker ${i + 1}`, [join(ROOT, "bench", "baseline-worker.mjs")], env),
  );
  const queue = new Queue("baseline", { connection: ctx.redis, prefix: `{${prefix}}` });
  try {
    await Promise.all(workers.map((w) => w.waitForLine(/baseline worker started/, 60_000)));
    const cpu0 = workers.reduce((sum, w) => sum + w.cpuMs(), 0);
    const split0 = sumSplits(workers);
    const switches0 = sumSwitches(workers);
    const started = performance.now();
    for (let start = 0; start < options.rows; start += 1000) {
      const end = Math.min(options.rows, start + 1000);
      await queue.addBulk(
        Array.from({ length: end - start }, (_, k) => ({
          name: "baseline",
          data: rowParams(start + k, { promptLength: options.promptLength }),
          opts: { jobId: `bench/${start + k}`, removeOnComplete: true, attempts: 3 },
        })),
      );
    }
    for (;;) {
      const counts = await queue.getJobCounts("wait", "active", "delayed", "prioritized");
      if (Object.values(counts).every((n) => n === 0)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuMs = workers.reduce((sum, w) => sum + w.cpuMs(), 0) - cpu0;
    const contextSwitches = switchesSince(switches0, workers);
    const split = sumSplits(workers);
    const failed = await queue.getFailedCount();
    if (failed > 0) ctx.log(`  (baseline: ${failed} jobs failed)`);
    return {
      rows: options.rows,
      seconds,
      cpuMs,
      cpuSplitMs: { user: split.user - split0.user, system: split.system - split0.system },
      contextSwitches,
      peakRssMb: workers.map((w) => w.peakRssMb()),
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await queue.close();
    await ctx.dropPrefix(prefix);
  }
}

/** The user and kernel CPU milliseconds of the processes so far, summed. */
export function sumSplits(processes: readonly BenchProcess[]): { user: number; system: number } {
  const sum = { user: 0, system: 0 };
  for (const p of processes) {
    const { user, system } = p.cpuSplitMs();
    sum.user += user;
    sum.system += system;
  }
  return sum;
}

/** The processes' context switches, summed. */
export function sumSwitches(processes: readonly BenchProcess[]): ContextSwitches {
  const total = { voluntary: 0, involuntary: 0 };
  for (const p of processes) {
    const { voluntary, involuntary } = p.contextSwitches();
    total.voluntary += voluntary;
    total.involuntary += involuntary;
  }
  return total;
}

/** The processes' context switches since `before` (a `sumSwitches`). */
export function switchesSince(before: ContextSwitches, processes: readonly BenchProcess[]): ContextSwitches {
  const now = sumSwitches(processes);
  return { voluntary: now.voluntary - before.voluntary, involuntary: now.involuntary - before.involuntary };
}
