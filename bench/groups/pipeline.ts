/**
 * The pipeline figures: N rows (300-character prompts) through spawned `kie-batch worker`
 * processes on the simulator with every limit lifted (instant answers, no rate window), against
 * plain BullMQ workers making the same calls to the same simulator in the same run.
 */
import { join } from "node:path";
import { runBaselinePipeline, sumSplits, sumSwitches, switchesSince } from "../lib/baseline.js";
import { commandCounts, perRow } from "../lib/command-stats.js";
import { createDeployment, startLiftedSimulator } from "../lib/deployment.js";
import { type Figure, fmt, goalOn, ratioOf } from "../lib/figures.js";
import type { BenchGroup } from "../lib/group.js";
import { describeParts, measureRowBytes } from "../lib/redis-bytes.js";
import { writeCsvManifest } from "../manifest-file.js";

const PROMPT = 300;
/**
 * Jobs at once in each plain worker, and archive slots in each kie-batch worker: about the same
 * number of downloads in flight on both sides (every row is then archived in its poll job). At the default 4 (sized for KIE's real rate, where
 * the archive queue stays empty) this lifted run keeps a backlog of archive jobs that takes every
 * freed archive slot, so the poll that finds a task done would hand its row on instead of
 * archiving it in the same job (README, Stages).
 */
const DOWNLOADS_AT_ONCE = 16;

export const pipelineGroup: BenchGroup = {
  name: "pipeline",
  about: "rows/s, CPU ms per row, peak RSS, Redis bytes: kie-batch workers vs plain BullMQ workers",
  async run(ctx, sizes) {
    const rows = sizes.pipelineRows;
    const workers = sizes.pipelineWorkers;
    const sim = await startLiftedSimulator();
    try {
      const file = join(ctx.dir, `pipeline-${rows}.csv`);
      await writeCsvManifest(file, rows, { promptLength: PROMPT });

      ctx.log(`  plain BullMQ baseline: ${fmt(rows)} rows, ${workers} processes`);
      const baseBefore = await commandCounts(ctx.redis);
      const base = await runBaselinePipeline(ctx, sim.url, {
        rows,
        workers,
        promptLength: PROMPT,
        concurrency: DOWNLOADS_AT_ONCE,
      });
      const baseCommands = perRow(baseBefore, await commandCounts(ctx.redis), rows);
      ctx.log(
        `    ${fmt(rows / base.seconds)} rows/s, ${fmt(base.cpuMs / rows, 2)} CPU ms/row, ${fmt((base.contextSwitches.voluntary + base.contextSwitches.involuntary) / rows, 1)} context switches/row`,
      );

      ctx.log(
        `  kie-batch: ${fmt(rows)} rows, ${workers} worker processes (--concurrency-archive ${DOWNLOADS_AT_ONCE})`,
      );
      const dep = await createDeployment(ctx, "pipeline", sim);
      try {
        const procs = await dep.startWorkers(workers, ["--concurrency-archive", String(DOWNLOADS_AT_ONCE)]);
        const cpu0 = procs.reduce((sum, p) => sum + p.cpuMs(), 0);
        const switches0 = sumSwitches(procs);
        const split0 = sumSplits(procs);
        const commandsBefore = await commandCounts(ctx.redis);
        const started = performance.now();
        await dep.enqueue(file, "pipeline");
        const summary = await dep.waitFinished("pipeline", Math.max(600_000, rows * 50));
        const seconds = (performance.now() - started) / 1000;
        const cpuMs = procs.reduce((sum, p) => sum + p.cpuMs(), 0) - cpu0;
        const switched = switchesSince(switches0, procs);
        const split1 = sumSplits(procs);
        const userMs = (split1.user - split0.user) / rows;
        const systemMs = (split1.system - split0.system) / rows;
        const perRowOf = (c: { voluntary: number; involuntary: number }) =>
          (c.voluntary + c.involuntary) / rows;
        const switches = perRowOf(switched);
        const baseSwitches = perRowOf(base.contextSwitches);
        const split = (c: { voluntary: number; involuntary: number }) =>
          `${fmt(c.voluntary / rows, 1)} sleeps + ${fmt(c.involuntary / rows, 1)} preemptions`;
        const commands = perRow(commandsBefore, await commandCounts(ctx.redis), rows);
        const peaks = procs.map((p) => p.peakRssMb());
        if (summary.failed > 0) ctx.log(`    (${summary.failed} rows failed)`);
        // What the rows settle into: the freeze walk the workers' sweep runs (every 5 minutes,
        // on rows settled a minute), run here after the CPU window, so none of it is counted
        // in the workers' CPU (the bytes group measures it through the workers' own sweep).
        const frozen = await dep.freeze("pipeline");
        const bytes = await measureRowBytes(ctx.redis, dep.prefix, rows);
        ctx.log(
          `    ${fmt(rows / seconds)} rows/s, ${fmt(cpuMs / rows, 2)} CPU ms/row, ${fmt(commands.commands, 1)} Redis commands/row (${fmt(commands.scripts, 1)} script calls; plain BullMQ ${fmt(baseCommands.commands, 1)}, ${fmt(baseCommands.scripts, 1)})`,
        );
        ctx.log(
          `    Redis bytes per archived row, ${fmt(frozen)} rows frozen: ${fmt(bytes.perRow)} (${describeParts(bytes)})`,
        );
        const rate = rows / seconds;
        const baseRate = rows / base.seconds;
        const cpu = cpuMs / rows;
        const baseCpu = base.cpuMs / rows;
        const group = "pipeline";
        return [
          {
            group,
            figure: `pipeline rows/s, limits lifted, ${workers} processes`,
            unit: "rows/s",
            measured: rate,
            baseline: baseRate,
            ratio: ratioOf(rate, baseRate),
            goal: "≥ 0.5×",
            met: goalOn(ratioOf(rate, baseRate), ">=", 0.5),
          },
          {
            group,
            figure: "worker CPU ms per row",
            unit: "ms",
            measured: cpu,
            baseline: baseCpu,
            ratio: ratioOf(cpu, baseCpu),
            goal: "≤ 1.5×",
            met: goalOn(ratioOf(cpu, baseCpu), "<=", 1.5),
            note: `user ${fmt(userMs, 2)} + system ${fmt(systemMs, 2)} ms a row (plain BullMQ ${fmt(base.cpuSplitMs.user / rows, 2)} + ${fmt(base.cpuSplitMs.system / rows, 2)}); system time is the kernel's side of socket writes, fsyncs and thread hand-offs`,
          },
          {
            group,
            figure: "worker context switches per row",
            unit: "",
            measured: switches,
            baseline: baseSwitches,
            ratio: ratioOf(switches, baseSwitches),
            goal: "-",
            note: `every thread of every worker process: ${split(switched)} a row (plain BullMQ ${split(base.contextSwitches)}); sleeps are hand-offs (a wait for a socket, a timer, another thread), which load moves little; preemptions rise with load`,
          },
          ...(ctx.privateRedis
            ? [
                {
                  group,
                  figure: "Redis commands per row (script-internal included; script calls in the note)",
                  unit: "",
                  measured: commands.commands,
                  baseline: baseCommands.commands,
                  ratio: ratioOf(commands.commands, baseCommands.commands),
                  goal: "-",
                  note: `script calls (EVALSHA, one round trip each) per row: ${fmt(commands.scripts, 1)}; plain BullMQ ${fmt(baseCommands.scripts, 1)}. Every client's commands, the bench's own enqueue and polling included; independent of load`,
                },
              ]
            : []),
          {
            group,
            figure: "worker peak RSS per process (max)",
            unit: "MB",
            measured: Math.max(...peaks),
            baseline: Math.max(...base.peakRssMb),
            ratio: ratioOf(Math.max(...peaks), Math.max(...base.peakRssMb)),
            goal: "-",
          },
          {
            group,
            figure: "Redis bytes per row after the pipeline (archived and frozen, 300 chars)",
            unit: "B",
            measured: bytes.perRow,
            goal: "≤ 800 B",
            met: goalOn(bytes.perRow, "<=", 800),
            note: `${describeParts(bytes)}; frozen in the bench process after the CPU window (${fmt(frozen)} rows), by the walk the workers' sweep runs`,
          },
        ] satisfies Figure[];
      } finally {
        await dep.close();
        await ctx.dropPrefix(dep.prefix);
      }
    } finally {
      await sim.close();
    }
  },
};
