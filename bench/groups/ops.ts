/**
 * Operations on a large batch read what they need, not the batch: `retry`, `cancel` and the
 * dashboard's failure list on a batch of `opsRows` rows of which 10 failed and 10 are queued (the
 * rest archived), and `results --format csv` of the whole batch. Row-hash reads are counted on
 * the ledger's own connection (every command, pipelined or not, goes through `sendCommand`). The
 * baseline is the walk the operations did before the state indexes (every row, filtered by
 * state), run in the same bench; for `results`, the two passes a batch recorded without its
 * columns still gets. Peak RSS growth while `results` streams shows that memory stays flat.
 */
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { QueueSet } from "../../src/bull/queues.js";
import { cancelBatch } from "../../src/commands/cancel.js";
import { retryBatch } from "../../src/commands/retry.js";
import { createFailureReader } from "../../src/dashboard/failures.js";
import { createLedger, ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { writeResults } from "../../src/report/results.js";
import { type Figure, fmt, goalOn, ratioOf } from "../lib/figures.js";
import type { BenchGroup } from "../lib/group.js";

const FEW = 10;
/** Rows per `addRows` call and transitions in flight while the batch is built. */
const BUILD_CHUNK = 10_000;
const IN_FLIGHT = 2_000;

function row(i: number): NewRow {
  return {
    id: `r${i}`,
    line: i + 2,
    prompt: `a watercolor of lighthouse number ${i} `.padEnd(300, "x"),
    params: { aspect_ratio: "1:1" },
    metadata: { n: String(i) },
    estimatedCredits: 8,
  };
}

/** A sink that drops what it gets (the CSV of a million rows is not the figure). */
function nullSink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

export const opsGroup: BenchGroup = {
  name: "ops",
  about: "rows read by retry / cancel / failure list (10 of a large batch) and by results (each row once)",
  async run(ctx, sizes) {
    const rows = sizes.opsRows;
    const prefix = ctx.newPrefix("ops");
    const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 3 });
    // A ledger row key of any batch of the prefix: `{<prefix>:<batch>}:ledger:row:<id>`.
    const isRowKey = (key: string) => key.startsWith(`{${prefix}:`) && key.includes("}:ledger:row:");
    let reads = 0;
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { name: string; args: unknown[] }, ...rest: unknown[]) => {
      const key = command.args[0];
      if (
        (command.name === "hgetall" || command.name === "hget" || command.name === "hmget") &&
        typeof key === "string" &&
        isRowKey(key)
      )
        reads++;
      return (send as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof redis.sendCommand;
    const counted = async (what: () => Promise<unknown>): Promise<number> => {
      reads = 0;
      await what();
      return reads;
    };
    const ledger = createLedger(redis, { prefix });
    const queues = new QueueSet({ connection: redis, queuePrefix: prefix });
    const clock = { now: () => Date.now() };
    const out = nullSink();
    try {
      const built = performance.now();
      for (let start = 0; start < rows; start += BUILD_CHUNK) {
        const end = Math.min(rows, start + BUILD_CHUNK);
        await ledger.addRows(
          "big",
          Array.from({ length: end - start }, (_, k) => row(start + k)),
        );
      }
      // 10 failed and 10 queued rows spread over the batch; the rest archived.
      const step = Math.floor(rows / FEW);
      const failed = new Set(Array.from({ length: FEW }, (_, k) => k * step + 7));
      const queued = new Set(Array.from({ length: FEW }, (_, k) => k * step + 3));
      const rest: number[] = [];
      for (let i = 0; i < rows; i++) if (!failed.has(i) && !queued.has(i)) rest.push(i);
      for (let start = 0; start < rest.length; start += IN_FLIGHT) {
        await Promise.all(
          rest
            .slice(start, start + IN_FLIGHT)
            .map((i) => ledger.transition("big", `r${i}`, { to: "archived" })),
        );
      }
      // With a task, as most failures have one: retry polls it again (submitted), not queued.
      for (const i of failed) {
        await ledger.transition("big", `r${i}`, {
          to: "failed",
          addTaskId: `task-${i}`,
          set: { error: "boom" },
        });
      }
      ctx.log(
        `  ${fmt(rows)} rows recorded (${FEW} failed, ${FEW} queued) in ${fmt((performance.now() - built) / 1000, 1)} s`,
      );

      // Before the state indexes: every row read, filtered by state.
      const walk = (status: "failed" | "queued") => async () => {
        for await (const _ of ledger.rows("big", { statuses: [status] })) {
          // only the reads count
        }
      };
      const baselineFailed = await counted(walk("failed"));
      const baselineQueued = await counted(walk("queued"));

      const failures = createFailureReader({ ledger, limit: FEW, clock });
      const listReads = await counted(() => failures.read("big", FEW));
      const retryReads = await counted(() => retryBatch({ ledger, queues, clock, out }, "big"));
      const cancelReads = await counted(() => cancelBatch({ ledger, queues, out }, "big"));
      ctx.log(
        `  rows read: failure list ${listReads}, retry ${retryReads}, cancel ${cancelReads}; the walk by state read ${fmt(baselineFailed)}`,
      );

      // results: each row once, memory flat (peak RSS over the start, sampled while it streams).
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }, 50);
      const resultsStarted = performance.now();
      const resultsReads = await counted(() => writeResults({ ledger }, "big", "csv", nullSink()));
      clearInterval(sampler);
      const resultsS = (performance.now() - resultsStarted) / 1000;
      const rssGrowthMb = (rssPeak - rssBefore) / 2 ** 20;
      // The same batch as an earlier version recorded it: no columns kept, two passes.
      await redis.hdel(ledgerKeys(prefix).batch("big"), "columnsKept");
      const legacyReads = await counted(() => writeResults({ ledger }, "big", "csv", nullSink()));
      ctx.log(
        `  results csv: ${fmt(resultsReads)} row reads for ${fmt(rows)} rows in ${fmt(resultsS, 1)} s, peak RSS +${fmt(rssGrowthMb, 1)} MB; without kept columns ${fmt(legacyReads)} reads`,
      );

      const few = (figure: string, measured: number, baseline: number): Figure => ({
        group: "ops",
        figure,
        unit: "rows",
        measured,
        baseline,
        ratio: ratioOf(measured, baseline),
        goal: `≈ ${FEW} (≤ ${2 * FEW})`,
        met: goalOn(measured, "<=", 2 * FEW),
        note: `${fmt(rows)}-row batch, ${FEW} failed, ${FEW} queued`,
      });
      return [
        few("rows read by the dashboard's failure list", listReads, baselineFailed),
        few("rows read by retry", retryReads, baselineFailed),
        few("rows read by cancel", cancelReads, baselineQueued),
        {
          group: "ops",
          figure: "row reads per row by results --format csv",
          unit: "",
          measured: resultsReads / rows,
          baseline: legacyReads / rows,
          ratio: ratioOf(resultsReads, legacyReads),
          goal: "1",
          met: goalOn(resultsReads / rows, "==", 1),
          note: `${fmt(rows)} rows; baseline: a batch recorded without its columns (two passes)`,
        },
        {
          group: "ops",
          figure: "peak RSS growth while results streams",
          unit: "MB",
          measured: rssGrowthMb,
          goal: "flat (≤ 64 MB)",
          met: goalOn(rssGrowthMb, "<=", 64),
          note: `${fmt(rows)} rows to a null sink, ${fmt(resultsS, 1)} s`,
        },
      ] satisfies Figure[];
    } finally {
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
      await ctx.dropPrefix(prefix);
    }
  },
};
