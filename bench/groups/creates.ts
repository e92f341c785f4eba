/**
 * Creates per second against what the rate window allows, with 3 worker processes sharing one
 * key: the simulator enforces the same sliding window as KIE_RATE_LIMIT (20/10s and 20/4s; the
 * quick run scales the windows down). Counted over whole windows from the first create: at most
 * `limit` per window fit, so creates ÷ (windows × limit) is the fraction of the allowance used.
 */
import { join } from "node:path";
import { startSimulator } from "../../src/simulator/index.js";
import { createDeployment } from "../lib/deployment.js";
import { type Figure, fmt, goalOn } from "../lib/figures.js";
import type { BenchGroup } from "../lib/group.js";
import { writeCsvManifest } from "../manifest-file.js";

const LIMIT = 20;
const WINDOWS_MS = [10_000, 4_000];

export const createsGroup: BenchGroup = {
  name: "creates",
  about: "creates/s ÷ allowed and 429s, 3 worker processes, at 20/10s and 20/4s",
  async run(ctx, sizes) {
    const figures: Figure[] = [];
    for (const nominalMs of WINDOWS_MS) {
      const windowMs = Math.round(nominalMs * sizes.createWindowScale);
      const windows = sizes.createWindows;
      // Enough rows that the window, not the rows, is what stops the creates.
      const rows = LIMIT * (windows + 3);
      const file = join(ctx.dir, `creates-${windowMs}.csv`);
      await writeCsvManifest(file, rows, { promptLength: 300 });
      const sim = await startSimulator({
        rateLimit: { limit: LIMIT, windowMs },
        latency: { minMs: 200, maxMs: 1_000 },
        credits: 1e12,
        randomSeed: 1,
      });
      const dep = await createDeployment(ctx, `creates-${windowMs}`, sim, {
        KIE_RATE_LIMIT: `${LIMIT}/${windowMs}ms`,
      });
      try {
        await dep.startWorkers(3);
        await dep.enqueue(file, "creates");
        const deadline = Date.now() + 120_000 + windows * windowMs * 3;
        let first: number | undefined;
        for (;;) {
          first ??= sim.stats().createTimes[0];
          if (first !== undefined && Date.now() > first + windows * windowMs + 200) break;
          if (Date.now() > deadline) throw new Error("no creates reached the simulator");
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const stats = sim.stats();
        const end = first! + windows * windowMs;
        const creates = stats.createTimes.filter((t) => t < end).length;
        const allowed = windows * LIMIT;
        const ratio = creates / allowed;
        const rate = `${LIMIT}/${windowMs / 1000}s`;
        ctx.log(
          `  ${rate}: ${creates} creates in ${windows} windows (allowed ${allowed}): ${fmt(ratio, 3)}; ${stats.rateLimited} × 429`,
        );
        figures.push(
          {
            group: "creates",
            figure: `creates/s ÷ allowed, 3 processes, ${rate}`,
            unit: "/s",
            measured: (creates / (windows * windowMs)) * 1000,
            baseline: (LIMIT / windowMs) * 1000,
            ratio,
            goal: "≥ 0.97×",
            met: goalOn(ratio, ">=", 0.97),
            note: `${creates} of ${allowed} creates in ${windows} windows`,
          },
          {
            group: "creates",
            figure: `429 answers, 3 processes, ${rate}`,
            unit: "",
            measured: stats.rateLimited,
            goal: "0",
            met: goalOn(stats.rateLimited, "==", 0),
          },
        );
      } finally {
        await dep.close();
        await sim.close();
        await ctx.dropPrefix(dep.prefix);
      }
    }
    return figures;
  },
};
