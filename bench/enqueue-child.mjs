/**
 * One `enqueue` in its own process, so its peak memory is the producer's alone. Plain JavaScript:
 * it loads the producer from ROOT, either the TypeScript sources (run under tsx, as a checkout's
 * `bin/kie-batch.js` does) or a compiled copy (plain node, as an installed package runs).
 *
 *   node [--import tsx] bench/enqueue-child.mjs ROOT FILE PREFIX [--dry-run | --idle]
 *
 * Prints one JSON line. Peak RSS is sampled every 50 ms and read from the kernel (VmHWM).
 * `--idle` only loads the modules: the process's own footprint, for comparison.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";

const [root, file, prefix, mode] = process.argv.slice(2);
if (!root || !file || !prefix)
  throw new Error("usage: enqueue-child.mjs ROOT FILE PREFIX [--dry-run|--idle]");
const load = (path) => import(pathToFileURL(join(root, path)).href);
const { enqueue } = await load("producer/index.js");
const { createRedisBackend } = await load("bull/producer-backend.js");
const { createLedger } = await load("ledger/index.js");
const { QueueSet } = await load("bull/queues.js");

function peakFromKernel() {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return hwm ? Number(hwm[1]) / 1024 : null;
}

if (mode === "--idle") {
  process.stdout.write(`${JSON.stringify({ peakRssHwmMb: peakFromKernel() })}\n`);
  process.exit(0);
}

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
process.stdout.write(
  `${JSON.stringify({
    total: summary.total,
    enqueued: summary.enqueued,
    seconds,
    peakRssSampledMb: peakSampled / 2 ** 20,
    peakRssHwmMb: peakFromKernel(),
  })}\n`,
);
