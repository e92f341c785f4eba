/**
 * Redis bytes per row, queued and archived, with 40-, 300- and 2,000-character prompts: rows
 * enqueued through the real producer, measured, then archived by spawned `kie-batch worker`
 * processes on the simulator and measured again once the workers' reconciler sweep has frozen the
 * batch (its settled archived rows compressed into frozen pages): what a user's batch settles into,
 * within one sweep (KIE_RECONCILE_EVERY, 5 minutes by default) of its rows settling. The queued
 * figure's baseline is a plain BullMQ job holding the same generation parameters (what a queue
 * needs at the least).
 */
import { join } from "node:path";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { ledgerKeys } from "../../src/ledger/keys.js";
import type { BenchContext } from "../lib/context.js";
import { createDeployment, startLiftedSimulator } from "../lib/deployment.js";
import { type Figure, fmt, goalOn, ratioOf } from "../lib/figures.js";
import type { BenchGroup } from "../lib/group.js";
import { describeParts, measureRowBytes } from "../lib/redis-bytes.js";
import { rowParams, writeCsvManifest } from "../manifest-file.js";

const PROMPTS = [40, 300, 2000] as const;

/**
 * The workers' reconciler settings in this group: a sweep every 2 s that freezes rows archived over
 * 1 s ago, so the batch is frozen seconds after it finishes (a user's, within 5 minutes).
 */
const FREEZE_ENV = { KIE_RECONCILE_EVERY: "2s", KIE_RECONCILE_SETTLE: "1s" };

/**
 * Waits until the freezer is done with the batch: its hash's `frozenTo` cursor (every row below it
 * frozen, or failed/cancelled and left as its keys) has reached `nextSeq`.
 */
async function waitFrozen(redis: Redis, prefix: string, batch: string, timeoutMs: number): Promise<void> {
  const key = ledgerKeys(prefix).batch(batch);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [frozenTo, nextSeq] = await redis.hmget(key, "frozenTo", "nextSeq");
    if (frozenTo !== null && nextSeq !== null && Number(frozenTo) >= Number(nextSeq)) return;
    if (Date.now() > deadline) {
      const seconds = Math.round(timeoutMs / 1000);
      throw new Error(
        frozenTo === null
          ? `batch ${batch}: no frozenTo on ${key} ${seconds} s after it finished: the workers froze ` +
              "nothing: is the freezer (frozen pages, ledger) in this tree's build?"
          : `batch ${batch}: frozenTo ${frozenTo} of nextSeq ${nextSeq} after ${seconds} s: the freezer did not finish`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Bytes per row of plain BullMQ jobs carrying the same parameters (`addBulk`, waiting). */
async function plainJobBytes(ctx: BenchContext, rows: number, promptLength: number): Promise<number> {
  const prefix = ctx.newPrefix("bytes-plain");
  const queue = new Queue("plain", { connection: ctx.redis, prefix: `{${prefix}}` });
  try {
    for (let start = 0; start < rows; start += 1000) {
      const end = Math.min(rows, start + 1000);
      await queue.addBulk(
        Array.from({ length: end - start }, (_, k) => ({
          name: "plain",
          data: rowParams(start + k, { promptLength }),
          opts: { jobId: `bench/${start + k}`, removeOnComplete: true },
        })),
      );
    }
    return (await measureRowBytes(ctx.redis, prefix, rows)).perRow;
  } finally {
    await queue.close();
    await ctx.dropPrefix(prefix);
  }
}

export const bytesGroup: BenchGroup = {
  name: "bytes",
  about: "Redis bytes per row (MEMORY USAGE), queued and archived, 40/300/2,000-character prompts",
  async run(ctx, sizes) {
    const rows = sizes.bytesRows;
    const figures: Figure[] = [];
    const sim = await startLiftedSimulator();
    try {
      for (const promptLength of PROMPTS) {
        const file = join(ctx.dir, `bytes-${promptLength}.csv`);
        await writeCsvManifest(file, rows, { promptLength });
        const dep = await createDeployment(ctx, `bytes${promptLength}`, sim);
        try {
          const enqueued = await dep.enqueue(file, "bytes");
          if (enqueued !== rows) throw new Error(`enqueued ${enqueued} of ${rows} rows`);
          const queued = await measureRowBytes(ctx.redis, dep.prefix, rows);
          const plain = await plainJobBytes(ctx, rows, promptLength);
          ctx.log(
            `  ${promptLength}-char prompts, ${fmt(rows)} rows queued: ${fmt(queued.perRow)} B/row (${describeParts(queued)}); plain BullMQ job ${fmt(plain)} B`,
          );
          await dep.startWorkers(2, [], FREEZE_ENV);
          const summary = await dep.waitFinished("bytes", Math.max(600_000, rows * 100));
          if (summary.failed > 0) ctx.log(`    (${summary.failed} rows failed)`);
          const finishedAt = Date.now();
          await waitFrozen(ctx.redis, dep.prefix, "bytes", Math.max(120_000, rows * 20));
          const frozenS = (Date.now() - finishedAt) / 1000;
          const archived = await measureRowBytes(ctx.redis, dep.prefix, rows);
          ctx.log(
            `    archived, frozen ${fmt(frozenS, 1)} s after the last row: ` +
              `${fmt(archived.perRow)} B/row (${describeParts(archived)})`,
          );
          const is300 = promptLength === 300;
          // The queued goal is judged on a batch large enough that the submit window (500 rows
          // with jobs) is a small share of it, as in a real large batch: the separate run below.
          const judgedQueued = is300 && sizes.bytesQueuedRows <= rows;
          figures.push(
            {
              group: "bytes",
              figure: `Redis bytes per queued row (ledger + job), ${promptLength}-char prompt`,
              unit: "B",
              measured: queued.perRow,
              baseline: plain,
              ratio: ratioOf(queued.perRow, plain),
              goal: judgedQueued ? "≤ 1,200 B" : is300 ? "- (judged below)" : "-",
              met: judgedQueued ? goalOn(queued.perRow, "<=", 1200) : undefined,
              note: `${describeParts(queued)} (baseline: a plain BullMQ job with the same parameters)`,
            },
            {
              group: "bytes",
              figure: `Redis bytes per archived row, ${promptLength}-char prompt`,
              unit: "B",
              measured: archived.perRow,
              goal: is300 ? "≤ 800 B" : "-",
              met: is300 ? goalOn(archived.perRow, "<=", 800) : undefined,
              note: describeParts(archived),
            },
          );
        } finally {
          await dep.close();
          await ctx.dropPrefix(dep.prefix);
        }
      }
      if (sizes.bytesQueuedRows > rows) figures.push(await queuedOnly(ctx, sizes.bytesQueuedRows, sim));
    } finally {
      await sim.close();
    }
    return figures;
  },
};

/** Bytes per queued row of a larger 300-character batch, enqueued and measured, not archived. */
async function queuedOnly(
  ctx: BenchContext,
  rows: number,
  sim: Awaited<ReturnType<typeof startLiftedSimulator>>,
): Promise<Figure> {
  const file = join(ctx.dir, "bytes-queued-300.csv");
  await writeCsvManifest(file, rows, { promptLength: 300 });
  const dep = await createDeployment(ctx, "bytesq300", sim);
  try {
    const enqueued = await dep.enqueue(file, "bytes");
    if (enqueued !== rows) throw new Error(`enqueued ${enqueued} of ${rows} rows`);
    const queued = await measureRowBytes(ctx.redis, dep.prefix, rows);
    ctx.log(
      `  300-char prompts, ${fmt(rows)} rows queued (not archived): ${fmt(queued.perRow)} B/row (${describeParts(queued)})`,
    );
    return {
      group: "bytes",
      figure: `Redis bytes per queued row (ledger + job), 300-char prompt, ${fmt(rows)} rows`,
      unit: "B",
      measured: queued.perRow,
      goal: "≤ 1,200 B",
      met: goalOn(queued.perRow, "<=", 1200),
      note: `${describeParts(queued)} (submit jobs for the first KIE_SUBMIT_WINDOW rows only)`,
    };
  } finally {
    await dep.close();
    await ctx.dropPrefix(dep.prefix);
  }
}
