/**
 * The budget-wait cost: a batch whose budget admits a handful of rows, workers running. Once the
 * admitted rows are done and every other row has met the budget once, the Redis commands run
 * during a fixed window, minus those of the same workers idle over an equal window (measured
 * first), are the waiting rows' cost. Counted with INFO's total_commands_processed, so only on
 * the bench's private redis-server is every command the bench's own.
 */
import { join } from "node:path";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { bullPrefix } from "../../src/worker/jobs.js";
import { createDeployment, startLiftedSimulator } from "../lib/deployment.js";
import { type Figure, fmt, goalOn } from "../lib/figures.js";
import type { BenchGroup } from "../lib/group.js";
import { writeCsvManifest } from "../manifest-file.js";

/** The dearest row: a budget of `n` times this admits at least `n` rows. */
const ROW_CREDITS = 8;

async function commandsProcessed(redis: Redis): Promise<number> {
  const info = await redis.info("stats");
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

/** Commands processed during `seconds`, not counting the two INFO calls that measure it. */
async function commandsOver(redis: Redis, seconds: number): Promise<number> {
  const before = await commandsProcessed(redis);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return (await commandsProcessed(redis)) - before - 1;
}

export const budgetWaitGroup: BenchGroup = {
  name: "budget-wait",
  about: "Redis commands per waiting row per minute, a batch far over its budget (INFO delta minus idle)",
  async run(ctx, sizes) {
    const rows = sizes.budgetRows;
    const windowS = sizes.budgetWindowS;
    const sim = await startLiftedSimulator();
    const dep = await createDeployment(ctx, "budget", sim);
    const submitQueue = new Queue("submit", {
      connection: ctx.redis,
      prefix: bullPrefix(dep.prefix, "submit"),
    });
    try {
      const file = join(ctx.dir, "budget.csv");
      await writeCsvManifest(file, rows, { promptLength: 300 });
      const workers = await dep.startWorkers(2);
      ctx.log(`  idle window: ${windowS} s, 2 workers, no rows`);
      const cpuBefore = workers.map((w) => w.cpuMs());
      const idle = await commandsOver(ctx.redis, windowS);
      // What an idle worker costs the machine: its CPU over the same window (from just after its
      // start, so the last of its start-up settling is in it).
      const idleCpu = Math.max(...workers.map((w, i) => (w.cpuMs() - cpuBefore[i]!) / windowS));
      ctx.log(
        `    ${fmt(idle)} commands (${fmt((idle / windowS) * 60)} per minute); ${fmt(idleCpu, 1)} CPU ms/s per worker`,
      );

      await dep.enqueue(file, "budget", { budget: sizes.budgetFits * ROW_CREDITS });
      // Settled: the admitted rows are done, and no submit job waits for a first look.
      const settleDeadline = Date.now() + Math.max(300_000, rows * 20);
      for (;;) {
        const s = await dep.summary("budget");
        const counts = await submitQueue.getJobCounts("wait", "prioritized", "active");
        const busy = s ? s.submitted + s.generating + s.archiving : 1;
        if (s && s.archived > 0 && busy === 0 && Object.values(counts).every((n) => n === 0)) break;
        if (Date.now() > settleDeadline) throw new Error(`budget batch never settled: ${JSON.stringify(s)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const settled = (await dep.summary("budget"))!;
      const waiting = settled.total - settled.archived - settled.failed - settled.cancelled;
      ctx.log(
        `  settled: ${settled.archived} archived, ${fmt(waiting)} waiting (ledger says waitingBudget ${settled.waitingBudget}); window ${windowS} s`,
      );
      const busy = await commandsOver(ctx.redis, windowS);
      const attributable = Math.max(0, busy - idle);
      const perRowMinute = attributable / waiting / (windowS / 60);
      ctx.log(
        `    ${fmt(busy)} commands; ${fmt(attributable)} over idle: ${fmt(perRowMinute, 2)} per row per minute`,
      );
      return [
        {
          group: "budget-wait",
          figure: "idle worker CPU ms per second (no rows)",
          unit: "ms/s",
          measured: idleCpu,
          goal: "-",
          note: `the busier of 2 workers over the ${windowS} s idle window, begun just after their start; every thread of the process`,
        },
        {
          group: "budget-wait",
          figure: "Redis commands per waiting row per minute (over budget)",
          unit: "cmds",
          measured: perRowMinute,
          baseline: (idle / windowS) * 60,
          goal: "0 (≤ 0.05 noise)",
          // Zero by design; the idle subtraction leaves some noise (periodic checks of the workers).
          met: ctx.privateRedis ? goalOn(perRowMinute, "<=", 0.05) : undefined,
          note: `${fmt(waiting)} rows waiting, ${windowS} s windows; baseline column: the idle workers' commands per minute (subtracted)${ctx.privateRedis ? "" : "; shared Redis: other clients' commands count too"}`,
        },
      ] satisfies Figure[];
    } finally {
      await submitQueue.close();
      await dep.close();
      await sim.close();
      await ctx.dropPrefix(dep.prefix);
    }
  },
};
