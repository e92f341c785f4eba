/**
 * Builds a whole deployment for a test: unique queue prefix, unique API key (so the account's
 * fleet keys are its own), a simulator, a temporary archive folder, and a helper to wait for a
 * batch to finish. Everything is removed by `close()`.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueueSet } from "../../src/bull/queues.js";
import { type Config, loadConfig } from "../../src/config/index.js";
import { accountId, accountKeyPattern } from "../../src/fleet/index.js";
import { type BatchSummary, createLedger, type Ledger, type NewRow } from "../../src/ledger/index.js";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorHandle, SimulatorOptions } from "../../src/simulator/types.js";
import { cleanupPrefix, REDIS_URL, testRedis, uniquePrefix } from "./redis.js";

export interface Pipeline {
  prefix: string;
  apiKey: string;
  archiveDir: string;
  sim: SimulatorHandle;
  config: Config;
  ledger: Ledger;
  queues: QueueSet;
  redis: ReturnType<typeof testRedis>;
  /** Rows straight into the ledger and the submit queue (what `enqueue` does, minus the manifest). */
  addRows(batch: string, rows: Partial<NewRow>[]): Promise<void>;
  /** Resolves with the batch once every row is archived, failed or cancelled. */
  waitFinished(batch: string, timeoutMs?: number): Promise<BatchSummary>;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startPipeline(
  options: { sim?: SimulatorOptions; env?: Record<string, string> } = {},
): Promise<Pipeline> {
  const prefix = uniquePrefix("p");
  const apiKey = `test-key-${randomUUID()}`;
  const archiveDir = await mkdtemp(join(tmpdir(), "kie-archive-"));
  const sim = await startSimulator({
    apiKey,
    latency: { minMs: 200, maxMs: 600 },
    recordLagMs: 100,
    ...options.sim,
  });
  const env: Record<string, string> = {
    REDIS_URL,
    KIE_QUEUE_PREFIX: prefix,
    KIE_API_KEY: apiKey,
    KIE_BASE_URL: sim.url,
    ARCHIVE_DIR: archiveDir,
    KIE_LOCK_MS: "5000",
    KIE_POLL_INTERVAL: "300ms",
    LOG_LEVEL: "silent",
    ...options.env,
  };
  const config = loadConfig(env);
  const redis = testRedis();
  const ledger = createLedger(redis, { prefix });
  const queues = new QueueSet({ connection: redis, queuePrefix: prefix });

  return {
    prefix,
    apiKey,
    archiveDir,
    sim,
    config,
    ledger,
    queues,
    redis,
    env,
    async addRows(batch, rows) {
      const full: NewRow[] = rows.map((row, i) => ({
        id: row.id ?? `row-${i + 1}`,
        line: row.line ?? i + 2,
        prompt: row.prompt ?? `a lighthouse at dusk, study ${i + 1}`,
        params: row.params ?? {},
        metadata: row.metadata ?? {},
        estimatedCredits: row.estimatedCredits ?? 8,
      }));
      const outcomes = await ledger.addRows(batch, full);
      for (const [i, row] of full.entries()) {
        if (outcomes[i] !== "duplicate") await queues.addSubmit({ batch, rowId: row.id, resubmit: 0 });
      }
    },
    async waitFinished(batch, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const summary = await ledger.getBatch(batch);
        if (summary && summary.archived + summary.failed + summary.cancelled === summary.total)
          return summary;
        if (Date.now() > deadline) {
          throw new Error(`batch ${batch} did not finish in ${timeoutMs} ms: ${JSON.stringify(summary)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      await queues.close();
      await sim.close();
      await cleanupPrefix(redis, prefix);
      const pattern = accountKeyPattern(accountId(apiKey));
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      await rm(archiveDir, { recursive: true, force: true });
    },
  };
}
