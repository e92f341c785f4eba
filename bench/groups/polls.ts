import { join } from "node:path";
import { POLL_BACKOFF } from "../../src/core/backoff.js";
import { startSimulator } from "../../src/simulator/index.js";
import { createDeployment } from "../lib/deployment.js";
import { type Figure, fmt, goalOn } from "../lib/figures.js";
import { freePort } from "../lib/free-port.js";
import type { BenchGroup } from "../lib/group.js";
import { writeCsvManifest } from "../manifest-file.js";

const GENERATION_MS = 8 * 60_000;
/** The worker defaults being scaled (config/schema.ts): poll interval, record-lag grace, max wait, poll rate. */
const DEFAULTS = { pollMs: POLL_BACKOFF.firstMs, graceMs: 60_000, maxWaitMs: 30 * 60_000, pollRate: 20 };

export const pollsGroup: BenchGroup = {
  name: "polls",
  about: "status calls per task, 8-minute generations (fast clock), polling mode and webhook mode",
  async run(ctx, sizes) {
    const scale = sizes.pollTimeScale;
    const tasks = sizes.pollTasks;
    const file = join(ctx.dir, "polls.csv");
    await writeCsvManifest(file, tasks, { promptLength: 300 });
    const figures: Figure[] = [];
    for (const mode of ["polling", "webhook"] as const) {
      const sim = await startSimulator({
        rateLimit: { limit: 1_000_000, windowMs: 1_000 },
        latency: { minMs: GENERATION_MS, maxMs: GENERATION_MS },
        timeScale: scale,
        credits: 1e12,
        randomSeed: 1,
      });
      const port = mode === "webhook" ? await freePort() : undefined;
      const dep = await createDeployment(ctx, `polls-${mode}`, sim, {
        KIE_POLL_INTERVAL: `${Math.round(DEFAULTS.pollMs / scale)}ms`,
        KIE_RECORD_LAG_GRACE: `${Math.round(DEFAULTS.graceMs / scale)}ms`,
        KIE_MAX_WAIT: `${Math.round(DEFAULTS.maxWaitMs / scale)}ms`,
        KIE_POLL_RATE: String(DEFAULTS.pollRate * scale),
        ...(port === undefined ? {} : { KIE_CALLBACK_URL: `http://127.0.0.1:${port}/kie` }),
      });
      try {
        await dep.startWorkers(1, port === undefined ? [] : ["--listen", String(port)]);
        await dep.enqueue(file, "polls");
        const summary = await dep.waitFinished("polls", 120_000 + (GENERATION_MS / scale) * 4);
        const stats = sim.stats();
        const perTask = stats.statusCalls / stats.creates;
        ctx.log(
          `  ${mode}: ${stats.creates} tasks, ${stats.statusCalls} status calls (${fmt(perTask, 2)} per task), ${stats.callbacksSent} callbacks; ${summary.archived} archived`,
        );
        const limit = mode === "polling" ? 8 : 3;
        figures.push({
          group: "polls",
          figure: `status calls per task, 8-min generations, ${mode} mode`,
          unit: "calls",
          measured: perTask,
          goal: `≤ ${limit}`,
          met: goalOn(perTask, "<=", limit),
          note: `${stats.creates} tasks, clock ×${scale}`,
        });
      } finally {
        await dep.close();
        await sim.close();
        await ctx.dropPrefix(dep.prefix);
      }
    }
    return figures;
  },
};
