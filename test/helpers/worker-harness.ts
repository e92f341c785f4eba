/**
 * One deployment per test for the worker's integration tests: `startPipeline` (unique prefix,
 * unique key, simulator, archive folder) plus in-process workers started from its config, a
 * view of the account's fleet state, and `until`, which polls a condition with a deadline
 * instead of sleeping. `close()` stops every worker it started, then the pipeline, and removes
 * the fleet keys of every API key the test used.
 */
import { type RunningWorker, startWorker, type WorkerRunOptions } from "../../src/app/index.js";
import { type Config, loadConfig } from "../../src/config/index.js";
import { createLogger, silentLogger } from "../../src/core/logger.js";
import { accountId, accountKeyPattern, createFleet, type Fleet } from "../../src/fleet/index.js";
import type { SimulatorOptions } from "../../src/simulator/types.js";
import { type Pipeline, startPipeline } from "./pipeline.js";

export interface WorkerHarness {
  pipeline: Pipeline;
  /** A worker on the pipeline's config, with `env` on top (e.g. another KIE_API_KEY). */
  worker(options?: WorkerRunOptions & { env?: Record<string, string> }): Promise<RunningWorker>;
  /** The config a worker started with `env` gets. */
  config(env?: Record<string, string>): Config;
  /** The fleet state (pause, backoff, in-flight) of an account; the pipeline's key by default. */
  fleet(apiKey?: string): Fleet;
  close(): Promise<void>;
}

export async function startHarness(
  options: { sim?: SimulatorOptions; env?: Record<string, string> } = {},
): Promise<WorkerHarness> {
  const pipeline = await startPipeline(options);
  const running: RunningWorker[] = [];
  const keys = new Set<string>([pipeline.apiKey]);
  const log = process.env.TEST_LOG ? createLogger({ level: "debug" }) : silentLogger();
  const config = (env: Record<string, string> = {}) => loadConfig({ ...pipeline.env, ...env });
  return {
    pipeline,
    config,
    async worker({ env, ...runOptions } = {}) {
      const workerConfig = config(env);
      if (workerConfig.KIE_API_KEY) keys.add(workerConfig.KIE_API_KEY);
      const worker = await startWorker(workerConfig, log, runOptions);
      running.push(worker);
      return worker;
    },
    fleet(apiKey = pipeline.apiKey) {
      keys.add(apiKey);
      return createFleet(pipeline.redis, { deployment: pipeline.prefix, apiKey });
    },
    async close() {
      await Promise.all(running.map((worker) => worker.close(5_000)));
      for (const key of keys) {
        if (key === pipeline.apiKey) continue; // the pipeline removes its own account's keys
        const found = await pipeline.redis.keys(accountKeyPattern(accountId(key)));
        if (found.length > 0) await pipeline.redis.del(...found);
      }
      await pipeline.close();
    },
  };
}

/**
 * Polls `probe` every `everyMs` until it returns something other than undefined/false, and
 * returns that; throws naming `what` (and the last value seen) after `timeoutMs`.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}
