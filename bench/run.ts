/**
 * `npm run bench`: the producer measured against plain BullMQ in the same run, on the same Redis.
 *
 *   (a) enqueue N CSV rows (default 100,000) with `enqueue`, and `addBulk` the same job payloads
 *       with the same job options in chunks of 1,000 (the baseline); print both rates and the
 *       ratio (target >= 0.7x). Two rounds, in the order baseline, producer, producer, baseline.
 *   (b) peak RSS of `enqueue` over an M-row CSV (default 1,000,000) in a child process (target
 *       < 250 MB), and the validation rate of a `--dry-run` over the same file. The child runs
 *       the sources compiled by `tsc` (as an installed package runs `dist/`); the fixed cost of
 *       running them through tsx instead (as a checkout's `bin/kie-batch.js` does) is measured
 *       apart and printed next to it.
 *
 * Flags: --rows N, --big-rows M, --skip-big. Every key written lives under unique prefixes and is
 * deleted at the end, as are the compiled copy and the CSV files. Not part of `npm test`.
 */

import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { createRedisBackend } from "../src/bull/producer-backend.js";
import { QueueSet } from "../src/bull/queues.js";
import { createLedger } from "../src/ledger/index.js";
import { DEFAULT_PRIORITY, enqueue } from "../src/producer/index.js";
import { jobKey, type SubmitJob } from "../src/worker/jobs.js";
import { writeCsvManifest } from "./manifest-file.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const CHUNK = 1000;

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: expected a whole number`);
  return value;
}

const rows = flag("--rows", 100_000);
const bigRows = flag("--big-rows", 1_000_000);
const skipBig = process.argv.includes("--skip-big");

const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
const prefixes: string[] = [];
const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function newPrefix(label: string): string {
  const prefix = `bench-${label}-${randomUUID()}`;
  prefixes.push(prefix);
  return prefix;
}

/** The producer, in this process: seconds to enqueue the whole file. */
async function runProducer(file: string, batch: string): Promise<{ seconds: number; enqueued: number }> {
  const prefix = newPrefix("producer");
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const started = performance.now();
  const summary = await enqueue(
    { file, batch },
    {
      connect: async () =>
        createRedisBackend({
          redis: connection,
          ledger: createLedger(connection, { prefix }),
          queuePrefix: prefix,
          queues: () => new QueueSet({ connection, queuePrefix: prefix }),
          onClose: async () => {
            await connection.quit();
          },
        }),
      out: discard,
      clock: { now: () => Date.now() },
    },
  );
  const seconds = (performance.now() - started) / 1000;
  await cleanup(prefix);
  return { seconds, enqueued: summary.enqueued };
}

/** Plain BullMQ: the same job payloads and options, `addBulk` in chunks of 1,000. */
async function runBaseline(rowIds: readonly string[], batch: string): Promise<{ seconds: number }> {
  const prefix = newPrefix("baseline");
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const queues = new QueueSet({ connection, queuePrefix: prefix });
  const options = queues.jobOptions("submit");
  const started = performance.now();
  for (let start = 0; start < rowIds.length; start += CHUNK) {
    await queues.queues.submit.addBulk(
      rowIds.slice(start, start + CHUNK).map((rowId) => {
        const data: SubmitJob = { batch, rowId, resubmit: 0 };
        return {
          name: "submit",
          data,
          opts: { ...options, jobId: jobKey(batch, rowId), priority: DEFAULT_PRIORITY },
        };
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  await queues.close();
  await connection.quit();
  await cleanup(prefix);
  return { seconds };
}

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");

/** Runs `bench/enqueue-child.mjs` on the modules under `moduleRoot` and returns its JSON line. */
async function runChild(
  moduleRoot: string,
  args: string[],
  options: { tsx?: boolean } = {},
): Promise<Record<string, number>> {
  const child = join(import.meta.dirname, "enqueue-child.mjs");
  const { stdout } = await run(
    process.execPath,
    [...(options.tsx ? ["--import", "tsx"] : []), child, moduleRoot, ...args],
    { env: { ...process.env, REDIS_URL }, maxBuffer: 1 << 20, cwd: ROOT },
  );
  return JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as Record<string, number>;
}

/**
 * Compiles `src` with the project's build settings into `outDir` (inside the checkout, so that
 * the compiled modules find node_modules). Type errors elsewhere in the tree do not stop it:
 * tsc still emits, and the producer's own files are type-checked by `npm run typecheck`.
 */
async function compileSources(outDir: string): Promise<void> {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  try {
    await run(
      process.execPath,
      [tsc, "-p", "tsconfig.build.json", "--outDir", outDir, "--sourceMap", "false"],
      {
        cwd: ROOT,
        maxBuffer: 16 << 20,
      },
    );
  } catch (error) {
    if (!existsSync(join(outDir, "producer", "index.js"))) throw error;
    console.log("  (tsc reported type errors elsewhere in the tree; the compiled producer is used anyway)");
  }
}

async function cleanup(prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `{${prefix}}*`, "COUNT", 5000);
    if (keys.length > 0) deleted += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
  return deleted;
}

const dir = await mkdtemp(join(tmpdir(), "kie-bench-"));
// Inside the checkout (ignored by git and biome), so the compiled modules resolve node_modules.
await mkdir(join(ROOT, ".tmp"), { recursive: true });
const compiled = await mkdtemp(join(ROOT, ".tmp", "bench-dist-"));
try {
  console.log(`kie-batch producer benchmark (Redis ${REDIS_URL}, node ${process.version})`);
  const small = join(dir, "small.csv");
  const file = join(dir, `rows-${rows}.csv`);
  await writeCsvManifest(small, 2_000);
  await writeCsvManifest(file, rows);
  // The same ids the producer derives would need the same hashing: any 16-hex ids are as costly.
  const rowIds = Array.from({ length: rows }, (_, i) =>
    createHash("sha256").update(String(i)).digest("hex").slice(0, 16),
  );

  // Warm-up: load Lua scripts and JIT both paths before anything is timed.
  await runProducer(small, "warm");
  await runBaseline(rowIds.slice(0, 2_000), "warm");

  console.log(`\n(a) enqueue ${fmt(rows)} CSV rows vs plain BullMQ addBulk (chunks of ${CHUNK})`);
  let producerSeconds = 0;
  let baselineSeconds = 0;
  for (const order of [
    ["baseline", "producer"],
    ["producer", "baseline"],
  ]) {
    for (const which of order) {
      if (which === "baseline") {
        const { seconds } = await runBaseline(rowIds, "bench");
        baselineSeconds += seconds;
        console.log(`  plain addBulk   ${fmt(rows / seconds).padStart(8)} jobs/s  (${fmt(seconds, 2)} s)`);
      } else {
        const { seconds, enqueued } = await runProducer(file, "bench");
        if (enqueued !== rows) throw new Error(`the producer enqueued ${enqueued} of ${rows} rows`);
        producerSeconds += seconds;
        console.log(
          `  kie-batch enqueue ${fmt(rows / seconds).padStart(6)} jobs/s  (${fmt(seconds, 2)} s: read, validate, ledger, addBulk)`,
        );
      }
    }
  }
  const producerRate = (2 * rows) / producerSeconds;
  const baselineRate = (2 * rows) / baselineSeconds;
  const ratio = producerRate / baselineRate;
  console.log(
    `  => enqueue ${fmt(producerRate)} jobs/s vs addBulk ${fmt(baselineRate)} jobs/s: ${fmt(ratio, 2)}x (target >= 0.70x) ${ratio >= 0.7 ? "OK" : "BELOW TARGET"}`,
  );

  if (!skipBig) {
    console.log(`\n(b) ${fmt(bigRows)} CSV rows, each run in a child process`);
    const big = join(dir, `rows-${bigRows}.csv`);
    await writeCsvManifest(big, bigRows);
    await compileSources(compiled);
    const dry = await runChild(compiled, [big, newPrefix("dry"), "--dry-run"]);
    console.log(
      `  --dry-run (validation only): ${fmt(dry.total! / dry.seconds!)} rows/s (${fmt(dry.seconds!, 1)} s), peak RSS ${fmt(dry.peakRssHwmMb!)} MB`,
    );
    const prefix = newPrefix("big");
    const result = await runChild(compiled, [big, prefix]);
    if (result.enqueued !== bigRows)
      throw new Error(`the producer enqueued ${result.enqueued} of ${bigRows} rows`);
    await cleanup(prefix);
    const peak = Math.max(result.peakRssHwmMb ?? 0, result.peakRssSampledMb ?? 0);
    console.log(
      `  enqueue: ${fmt(result.enqueued!)} rows in ${fmt(result.seconds!, 1)} s (${fmt(result.enqueued! / result.seconds!)} jobs/s)`,
    );
    console.log(
      `  peak RSS ${fmt(peak)} MB (VmHWM ${fmt(result.peakRssHwmMb ?? 0)} MB, sampled ${fmt(result.peakRssSampledMb ?? 0)} MB; target < 250 MB) ${peak < 250 ? "OK" : "ABOVE TARGET"}`,
    );
    const idleCompiled = await runChild(compiled, ["-", "-", "--idle"]);
    const idleTsx = await runChild(join(ROOT, "src"), ["-", "-", "--idle"], { tsx: true });
    const loader = idleTsx.peakRssHwmMb! - idleCompiled.peakRssHwmMb!;
    console.log(
      `  footprint with the modules loaded and nothing done: ${fmt(idleCompiled.peakRssHwmMb!)} MB compiled, ${fmt(idleTsx.peakRssHwmMb!)} MB under tsx;` +
        `\n  so a checkout's bin/kie-batch.js (tsx) would peak near ${fmt(peak + loader)} MB`,
    );
  }
} finally {
  let deleted = 0;
  for (const prefix of prefixes) deleted += await cleanup(prefix);
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
  await rm(compiled, { recursive: true, force: true });
  console.log(
    `\ncleaned up (${deleted} leftover keys deleted; temporary files and the compiled copy removed)`,
  );
}
