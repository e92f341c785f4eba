/**
 * Throughput grows with keys (issue 11). The simulator keeps one sliding window per key (20 per
 * window, the quick run scales the window down). In the same run: 3 worker processes with one key
 * (the baseline), then the same with three keys (KIE_API_KEYS), counted over whole windows from
 * the first create as in the creates group; then the first key is capped (433) and the other two
 * keys' creates are counted over the same number of windows, a window after the cap.
 */
import { join } from "node:path";
import { type SimulatorHandle, startSimulator } from "../../src/simulator/index.js";
import type { BenchContext } from "../lib/context.js";
import { createDeployment } from "../lib/deployment.js";
import { fmt, goalOn } from "../lib/figures.js";
import type { BenchGroup, Sizes } from "../lib/group.js";
import { writeCsvManifest } from "../manifest-file.js";

const LIMIT = 20;
const NOMINAL_WINDOW_MS = 10_000;
const KEYS = 3;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the first create, then for `windows` whole windows after it; returns the first's time. */
async function firstCreate(sim: SimulatorHandle, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const first = sim.stats().createTimes[0];
    if (first !== undefined) return first;
    if (Date.now() > deadline) throw new Error("no creates reached the simulator");
    await sleep(50);
  }
}

/** Creates per key at `at` (epoch ms), read as close to it as the clock allows. */
async function createsByKeyAt(sim: SimulatorHandle, at: number): Promise<Record<string, number>> {
  await sleep(Math.max(0, at - Date.now()));
  return sim.stats().createsByKey ?? {};
}

interface Run {
  /** Creates in `windows` whole windows from the first create, all keys. */
  creates: number;
  rateLimited: number;
  /** With a cap: creates of the uncapped keys over `windows` windows starting a window after it. */
  afterCap?: number;
}

async function run(ctx: BenchContext, sizes: Sizes, keyCount: number, capOne: boolean): Promise<Run> {
  const windowMs = Math.round(NOMINAL_WINDOW_MS * sizes.createWindowScale);
  const windows = sizes.createWindows;
  const phases = capOne ? 2 * windows + 1 : windows;
  const rows = LIMIT * keyCount * (phases + 3);
  const file = join(ctx.dir, `keys-${keyCount}-${capOne ? "cap" : "plain"}.csv`);
  await writeCsvManifest(file, rows, { promptLength: 300 });
  const keys = Array.from({ length: keyCount }, () => ctx.newApiKey());
  const sim = await startSimulator({
    apiKeys: keys,
    rateLimit: { limit: LIMIT, windowMs },
    latency: { minMs: 200, maxMs: 1_000 },
    credits: 1e12,
    randomSeed: 1,
  });
  const dep = await createDeployment(ctx, `keys-${keyCount}`, sim, {
    KIE_API_KEY: keys[0]!,
    KIE_API_KEYS: keys.join(","),
    KIE_RATE_LIMIT: `${LIMIT}/${windowMs}ms`,
  });
  try {
    await dep.startWorkers(3);
    await dep.enqueue(file, "keys");
    const first = await firstCreate(sim, 120_000);
    const end = first + windows * windowMs;
    await sleep(Math.max(0, end + 200 - Date.now()));
    const stats = sim.stats();
    const creates = stats.createTimes.filter((t) => t < end).length;
    if (!capOne) return { creates, rateLimited: stats.rateLimited };
    ctx.log(`  ${keyCount} key(s): ${stats.rateLimited} × 429 before the cap`);
    sim.capKey(keys[0]!, true);
    const from = await createsByKeyAt(sim, end + windowMs);
    const to = await createsByKeyAt(sim, end + windowMs + windows * windowMs);
    const afterCap = keys.slice(1).reduce((sum, key) => sum + (to[key] ?? 0) - (from[key] ?? 0), 0);
    ctx.log(`  capped key: ${(to[keys[0]!] ?? 0) - (from[keys[0]!] ?? 0)} creates after the cap`);
    return { creates, rateLimited: sim.stats().rateLimited, afterCap };
  } finally {
    await dep.close();
    await sim.close();
    await ctx.dropPrefix(dep.prefix);
  }
}

export const keysGroup: BenchGroup = {
  name: "keys",
  about: "creates/s with 3 keys ÷ 3× one key's, 429s, and 2 keys' rate after the third is capped (433)",
  async run(ctx, sizes) {
    const windowMs = Math.round(NOMINAL_WINDOW_MS * sizes.createWindowScale);
    const windows = sizes.createWindows;
    const rate = `${LIMIT}/${windowMs / 1000}s per key`;
    const one = await run(ctx, sizes, 1, false);
    ctx.log(`  one key: ${one.creates} creates in ${windows} windows; ${one.rateLimited} × 429`);
    const three = await run(ctx, sizes, KEYS, true);
    const ratio = three.creates / (KEYS * one.creates);
    const capRatio = three.afterCap! / (2 * one.creates);
    ctx.log(
      `keys: ${KEYS} keys: ${three.creates} creates in ${windows} windows (3× one key: ${KEYS * one.creates}): ${fmt(ratio, 3)}; ${three.rateLimited} × 429; after the cap, 2 keys: ${three.afterCap} (2× one key: ${2 * one.creates}): ${fmt(capRatio, 3)}`,
    );
    const perSecond = (creates: number) => (creates / (windows * windowMs)) * 1000;
    return [
      {
        group: "keys",
        figure: `keys: creates/s, 3 keys ÷ 3× 1 key, ${rate}`,
        unit: "/s",
        measured: perSecond(three.creates),
        baseline: KEYS * perSecond(one.creates),
        ratio,
        goal: "≥ 0.95×",
        met: goalOn(ratio, ">=", 0.95),
        note: `${three.creates} creates with 3 keys, ${one.creates} with 1, in ${windows} windows (allowed per key: ${windows * LIMIT})`,
      },
      {
        group: "keys",
        figure: "keys: 429 answers, 3 keys",
        unit: "",
        measured: three.rateLimited,
        goal: "0",
        met: goalOn(three.rateLimited, "==", 0),
        note: `the 1-key baseline run met ${one.rateLimited} × 429`,
      },
      {
        group: "keys",
        figure: "keys: creates/s of 2 keys after the 3rd is capped ÷ 2× 1 key",
        unit: "/s",
        measured: perSecond(three.afterCap!),
        baseline: 2 * perSecond(one.creates),
        ratio: capRatio,
        goal: "≥ 0.95×",
        met: goalOn(capRatio, ">=", 0.95),
      },
    ];
  },
};
