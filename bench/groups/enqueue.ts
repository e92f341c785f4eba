/**
 * Enqueue against plain BullMQ `addBulk` of the same job payloads and options (chunks of 1,000),
 * on the same Redis in the same run:
 *   - in this process (the producer's own cost), two rounds: baseline, producer, producer, baseline;
 *   - through the `kie-batch` bin, spawned as a user runs it from a checkout (start-up included);
 *   - peak RSS of the bin's enqueue over a big file (the 1M rows in the full run);
 *   - full run only: the compiled sources in a child (dry-run rate, peak RSS, and the loader's
 *     fixed cost), the figures the earlier bench printed.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { QueueSet } from "../../src/bull/queues.js";
import { DEFAULT_PRIORITY, enqueue } from "../../src/producer/index.js";
import { jobKey, type SubmitJob } from "../../src/worker/jobs.js";
import type { BenchContext } from "../lib/context.js";
import { type Figure, fmt, goalOn, ratioOf } from "../lib/figures.js";
import type { BenchGroup } from "../lib/group.js";
import { spawnBin } from "../lib/processes.js";
import { producerConnect } from "../lib/producer-connect.js";
import { writeCsvManifest } from "../manifest-file.js";
import { compiledChildFigures } from "./enqueue-compiled.js";

const CHUNK = 1000;

async function runProducer(ctx: BenchContext, file: string, batch: string) {
  const prefix = ctx.newPrefix("producer");
  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
  const started = performance.now();
  const summary = await enqueue(
    { file, batch },
    {
      connect: producerConnect(connection, prefix),
      out: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
      clock: { now: () => Date.now() },
    },
  );
  const seconds = (performance.now() - started) / 1000;
  await ctx.dropPrefix(prefix);
  return { seconds, enqueued: summary.enqueued };
}

async function runAddBulk(ctx: BenchContext, rowIds: readonly string[], batch: string) {
  const prefix = ctx.newPrefix("addbulk");
  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
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
  await ctx.dropPrefix(prefix);
  return { seconds };
}

/** `kie-batch enqueue FILE` spawned through the bin: wall seconds from spawn to exit, peak RSS. */
async function runBin(ctx: BenchContext, file: string, rows: number, env: Record<string, string> = {}) {
  const prefix = ctx.newPrefix("bin");
  const started = performance.now();
  const child = spawnBin("kie-batch enqueue", ["enqueue", file, "--batch", "bench", "--json"], {
    REDIS_URL: ctx.redisUrl,
    KIE_QUEUE_PREFIX: prefix,
    LOG_LEVEL: "warn",
    ...env,
  });
  const code = await child.exited();
  const seconds = (performance.now() - started) / 1000;
  const peakRssMb = child.peakRssMb();
  if (code !== 0) throw new Error(`kie-batch enqueue exited ${code}\n${child.tail()}`);
  // The summary is the last line naming `enqueued` (progress lines before it name it too).
  const summary = [...child.tail().matchAll(/"enqueued":\s*(\d+)/g)].at(-1);
  if (summary && Number(summary[1]) !== rows)
    throw new Error(`the bin enqueued ${summary[1]} of ${rows} rows`);
  await ctx.dropPrefix(prefix);
  return { seconds, peakRssMb };
}

export const enqueueGroup: BenchGroup = {
  name: "enqueue",
  about:
    "enqueue rows/s ÷ plain addBulk jobs/s (in-process and through the bin; with the submit window and with a job for every row), peak RSS of the bin's enqueue",

  async run(ctx, sizes) {
    const rows = sizes.enqueueRows;
    const bigRows = sizes.enqueueBigRows;
    const small = join(ctx.dir, "enqueue-small.csv");
    const file = join(ctx.dir, `enqueue-${rows}.csv`);
    await writeCsvManifest(small, 2_000);
    await writeCsvManifest(file, rows);
    // Any 16-hex ids cost what the producer's derived ones cost.
    const rowIds = Array.from({ length: rows }, (_, i) =>
      createHash("sha256").update(String(i)).digest("hex").slice(0, 16),
    );
    // Warm-up: load Lua scripts and JIT both paths before anything is timed.
    await runProducer(ctx, small, "warm");
    await runAddBulk(ctx, rowIds.slice(0, 2_000), "warm");

    let producerSeconds = 0;
    let addBulkSeconds = 0;
    for (const order of [
      ["addBulk", "producer"],
      ["producer", "addBulk"],
    ]) {
      for (const which of order) {
        if (which === "addBulk") addBulkSeconds += (await runAddBulk(ctx, rowIds, "bench")).seconds;
        else {
          const { seconds, enqueued } = await runProducer(ctx, file, "bench");
          if (enqueued !== rows) throw new Error(`the producer enqueued ${enqueued} of ${rows} rows`);
          producerSeconds += seconds;
        }
      }
    }
    const producerRate = (2 * rows) / producerSeconds;
    const addBulkRate = (2 * rows) / addBulkSeconds;
    ctx.log(`  in-process: enqueue ${fmt(producerRate)} jobs/s, addBulk ${fmt(addBulkRate)} jobs/s`);

    const bin = await runBin(ctx, file, rows);
    const binRate = rows / bin.seconds;
    ctx.log(`  through the bin: ${fmt(binRate)} rows/s (${fmt(bin.seconds, 1)} s, start-up included)`);
    // Like for like with addBulk: a window as large as the batch gives every row its job at once,
    // as enqueue did before the submit window.
    const binAll = await runBin(ctx, file, rows, { KIE_SUBMIT_WINDOW: String(rows) });
    const binAllRate = rows / binAll.seconds;
    ctx.log(`  through the bin, every row a job: ${fmt(binAllRate)} rows/s (${fmt(binAll.seconds, 1)} s)`);

    const big = join(ctx.dir, `enqueue-${bigRows}.csv`);
    await writeCsvManifest(big, bigRows);
    const bigRun = await runBin(ctx, big, bigRows);
    ctx.log(
      `  through the bin, ${fmt(bigRows)} rows: peak RSS ${fmt(bigRun.peakRssMb)} MB (${fmt(bigRun.seconds, 1)} s)`,
    );

    const group = "enqueue";
    const figures: Figure[] = [
      {
        group,
        // What a user runs: every row recorded in the ledger, the first KIE_SUBMIT_WINDOW (500)
        // given their submit job, the rest given theirs as the window moves (README, Concepts).
        figure: `enqueue rows/s ÷ plain addBulk jobs/s, ${fmt(rows)} rows, through the bin`,
        unit: "rows/s",
        measured: binRate,
        baseline: addBulkRate,
        ratio: ratioOf(binRate, addBulkRate),
        goal: "≥ 0.8×",
        met: goalOn(ratioOf(binRate, addBulkRate), ">=", 0.8),
      },
      {
        group,
        figure: `enqueue rows/s ÷ plain addBulk jobs/s, ${fmt(rows)} rows, through the bin, every row a job (KIE_SUBMIT_WINDOW=${rows})`,
        unit: "rows/s",
        measured: binAllRate,
        baseline: addBulkRate,
        ratio: ratioOf(binAllRate, addBulkRate),
        goal: "-",
      },
      {
        group,
        figure: `enqueue rows/s ÷ plain addBulk jobs/s, ${fmt(rows)} rows, in-process`,
        unit: "rows/s",
        measured: producerRate,
        baseline: addBulkRate,
        ratio: ratioOf(producerRate, addBulkRate),
        goal: "-",
      },
      {
        group,
        figure: `enqueue peak RSS, ${fmt(bigRows)} rows, through the bin`,
        unit: "MB",
        measured: bigRun.peakRssMb,
        goal: bigRows >= 1_000_000 ? "< 200 MB" : "< 200 MB (at 1M)",
        met: goalOn(bigRun.peakRssMb, "<", 200),
      },
    ];
    if (!ctx.quick) figures.push(...(await compiledChildFigures(ctx, big, bigRows)));
    return figures;
  },
};
