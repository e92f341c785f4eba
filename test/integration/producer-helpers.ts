/**
 * Shared set-up of the producer tests: a unique prefix on the real Redis, manifests in a fresh
 * temporary folder, and `enqueue` wired to that prefix with its output collected.
 */

import { Readable } from "node:stream";
import type { Redis } from "ioredis";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { createLedger, type Ledger } from "../../src/ledger/index.js";
import {
  type EnqueueDeps,
  type EnqueueOptions,
  type EnqueueSummary,
  enqueue,
} from "../../src/producer/index.js";
import { jobKey } from "../../src/worker/jobs.js";
import { type TempFiles, tempFiles } from "../fixtures/manifest/temp-files.js";
import { cleanupPrefix, keysWithPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";
import { Collector } from "./ops-helpers.js";

export interface ProducerFixture {
  prefix: string;
  redis: Redis;
  ledger: Ledger;
  /** Stage queues for looking at jobs (built lazily: building one writes its meta key). */
  queues(): QueueSet;
  files: TempFiles;
  /** Runs `enqueue` against this prefix; `out` holds what it printed. */
  run(options: EnqueueOptions, extra?: Partial<EnqueueDeps>): Promise<EnqueueSummary & { out: string }>;
  /** Every key of the prefix. */
  keys(): Promise<string[]>;
  /** The submit job ids present, for a batch. */
  jobIds(batch: string, rowIds: readonly string[]): Promise<string[]>;
  close(): Promise<void>;
}

export async function producerFixture(): Promise<ProducerFixture> {
  const prefix = uniquePrefix("producer");
  const redis = testRedis();
  const ledger = createLedger(redis, { prefix });
  const files = await tempFiles();
  let queueSet: QueueSet | undefined;
  const queues = () => {
    queueSet ??= new QueueSet({ connection: redis, queuePrefix: prefix });
    return queueSet;
  };
  return {
    prefix,
    redis,
    ledger,
    queues,
    files,
    async run(options, extra = {}) {
      const out = new Collector();
      const summary = await enqueue(options, {
        connect: async () =>
          createRedisBackend({
            redis,
            ledger,
            queuePrefix: prefix,
            queues: () => new QueueSet({ connection: redis, queuePrefix: prefix }),
          }),
        out,
        clock: { now: () => Date.now() },
        ...extra,
      });
      return { ...summary, out: out.text() };
    },
    keys: () => keysWithPrefix(redis, prefix),
    async jobIds(batch, rowIds) {
      const found: string[] = [];
      for (const rowId of rowIds) {
        const job = await queues().queues.submit.getJob(jobKey(batch, rowId));
        if (job) found.push(job.id!);
      }
      return found;
    },
    async close() {
      await queueSet?.close();
      await cleanupPrefix(redis, prefix);
      await redis.quit();
      await files.cleanup();
    },
  };
}

/** A CSV manifest: a header and one line per row. */
export function csv(header: string, ...rows: string[]): string {
  return `${[header, ...rows].join("\n")}\n`;
}

/** `n` distinct CSV rows `prompt N,N` under the header `prompt,seed`. */
export function csvRows(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `prompt ${from + i},${from + i}`);
}

export function stdinOf(text: string): NodeJS.ReadableStream {
  return Readable.from([Buffer.from(text)]);
}
