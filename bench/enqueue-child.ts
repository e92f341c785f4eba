/**
 * Runs one `enqueue` in its own process and prints a JSON line with its figures, so the parent
 * measures peak memory of nothing but the producer. Argv: FILE PREFIX [--dry-run].
 * Peak RSS is sampled every 50 ms and also read from the kernel's high-water mark (VmHWM).
 */

import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { createLedger } from "../src/ledger/index.js";
import { createRedisBackend, enqueue } from "../src/producer/index.js";
import { QueueSet } from "../src/queue/queues.js";

const [file, prefix, mode] = process.argv.slice(2);
if (!file || !prefix) throw new Error("usage: enqueue-child.ts FILE PREFIX [--dry-run]");
const dryRun = mode === "--dry-run";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

let peakSampled = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakSampled = Math.max(peakSampled, process.memoryUsage().rss);
}, 50);

const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const started = performance.now();
const summary = await enqueue(
  { file, batch: "bench", dryRun },
  {
    async connect() {
      // The dry-run figure is the validation rate alone: no Redis to ask.
      if (dryRun) throw new Error("not asked in this benchmark");
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      return createRedisBackend({
        redis,
        ledger: createLedger(redis, { prefix }),
        queuePrefix: prefix,
        queues: () => new QueueSet({ connection: redis, queuePrefix: prefix }),
        onClose: async () => {
          await redis.quit();
        },
      });
    },
    out: discard,
    clock: { now: () => Date.now() },
  },
);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
process.stdout.write(
  `${JSON.stringify({
    total: summary.total,
    enqueued: summary.enqueued,
    seconds,
    peakRssSampledMb: peakSampled / 2 ** 20,
    peakRssHwmMb: hwm ? Number(hwm[1]) / 1024 : null,
  })}\n`,
);
