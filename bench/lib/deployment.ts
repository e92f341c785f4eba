/**
 * One kie-batch deployment for a bench group: a queue prefix and an API key of its own, the
 * in-process simulator, an archive folder, spawned `kie-batch worker` processes, the producer
 * (in this process, through the real `enqueue`), and a wait for the batch to finish.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { type BatchSummary, createLedger } from "../../src/ledger/index.js";
import { enqueue } from "../../src/producer/index.js";
import { type SimulatorHandle, type SimulatorOptions, startSimulator } from "../../src/simulator/index.js";
import type { BenchContext } from "./context.js";
import { type BenchProcess, spawnBin } from "./processes.js";
import { producerConnect } from "./producer-connect.js";

/** A rate nobody reaches: "limits lifted". */
export const LIFTED_RATE = { limit: 1_000_000, windowMs: 1_000 };

/** The simulator answering at once, without a rate window: only the worker's own cost is left. */
export function startLiftedSimulator(extra: SimulatorOptions = {}): Promise<SimulatorHandle> {
  return startSimulator({
    rateLimit: LIFTED_RATE,
    latency: { minMs: 0, maxMs: 0 },
    recordLagMs: 0,
    credits: 1e12,
    randomSeed: 1,
    ...extra,
  });
}

export interface Deployment {
  prefix: string;
  apiKey: string;
  archiveDir: string;
  /** The environment of every `kie-batch` process of the deployment. */
  env: Record<string, string>;
  /** Enqueues `file` as `batch` through the producer, in this process; returns the rows enqueued. */
  enqueue(file: string, batch: string, options?: { budget?: number }): Promise<number>;
  startWorkers(count: number, args?: string[], env?: Record<string, string>): Promise<BenchProcess[]>;
  summary(batch: string): Promise<BatchSummary | undefined>;
  /**
   * Freezes the batch's archived rows now (the walk a worker's reconciler sweep runs once they
   * have settled: ledger/freeze.ts), in the bench process; returns the rows frozen.
   */
  freeze(batch: string): Promise<number>;
  /** Resolves when every row is archived, failed or cancelled; throws after `timeoutMs`. */
  waitFinished(batch: string, timeoutMs: number, onTick?: (s: BatchSummary) => void): Promise<BatchSummary>;
  close(): Promise<void>;
}

export async function createDeployment(
  ctx: BenchContext,
  label: string,
  sim: Pick<SimulatorHandle, "url">,
  env: Record<string, string> = {},
): Promise<Deployment> {
  const prefix = ctx.newPrefix(label);
  const apiKey = ctx.newApiKey();
  const archiveDir = join(ctx.dir, prefix, "archive");
  await mkdir(archiveDir, { recursive: true });
  const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 3 });
  const ledger = createLedger(redis, { prefix });
  const fullEnv: Record<string, string> = {
    REDIS_URL: ctx.redisUrl,
    KIE_QUEUE_PREFIX: prefix,
    KIE_API_KEY: apiKey,
    KIE_BASE_URL: sim.url,
    KIE_RATE_LIMIT: `${LIFTED_RATE.limit}/${LIFTED_RATE.windowMs}ms`,
    KIE_POLL_RATE: "1000000",
    KIE_POLL_INTERVAL: "20ms",
    ARCHIVE_DIR: archiveDir,
    LOG_LEVEL: "info",
    ...env,
  };
  const workers: BenchProcess[] = [];
  const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });

  return {
    prefix,
    apiKey,
    archiveDir,
    env: fullEnv,
    async enqueue(file, batch, options = {}) {
      const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 3 });
      const summary = await enqueue(
        { file, batch, ...(options.budget === undefined ? {} : { budget: options.budget }) },
        {
          connect: producerConnect(connection, prefix),
          out: discard,
          clock: { now: () => Date.now() },
        },
      );
      return summary.enqueued;
    },
    async startWorkers(count, args = [], env = {}) {
      const started = Array.from({ length: count }, (_, i) =>
        spawnBin(`${label} worker ${workers.length + i + 1}`, ["worker", ...args], { ...fullEnv, ...env }),
      );
      workers.push(...started);
      await Promise.all(started.map((p) => p.waitForLine(/worker started/, 120_000)));
      return started;
    },
    summary: (batch) => ledger.getBatch(batch),
    async freeze(batch) {
      const progress = await ledger.freeze(batch, { settleMs: 0, maxPages: Number.POSITIVE_INFINITY });
      return progress.frozen;
    },
    async waitFinished(batch, timeoutMs, onTick) {
      const deadline = Date.now() + timeoutMs;
      let last: BatchSummary | undefined;
      for (;;) {
        last = await ledger.getBatch(batch);
        if (last) onTick?.(last);
        if (last && last.total > 0 && last.archived + last.failed + last.cancelled === last.total)
          return last;
        if (Date.now() > deadline)
          throw new Error(`batch ${batch} not finished after ${timeoutMs} ms: ${JSON.stringify(last)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
