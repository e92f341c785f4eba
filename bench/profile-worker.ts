/**
 * `node --import tsx bench/profile-worker.ts [rows] [--redis URL] [--keep DIR] [--entry FILE] [--args "..."]
 * [--node-args "..."] [--no-profile] [--baseline]`: the pipeline
 * group's setup (lifted simulator in this process, 300-character prompts) with ONE
 * `kie-batch worker` started under `node --cpu-prof`, then the profile's top frames by self time
 * and by package. What the issue-10 CPU work was guided by; not part of `npm run bench`.
 *
 * Needs `npm run build` (the bin runs dist/). Uses a private redis-server unless --redis is given.
 */
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { runBaselinePipeline } from "./lib/baseline.js";
import { createContext } from "./lib/context.js";
import { createDeployment, startLiftedSimulator } from "./lib/deployment.js";
import { BIN, ROOT, spawnNode, stopAll } from "./lib/processes.js";
import { startPrivateRedis } from "./lib/redis-server.js";
import { writeCsvManifest } from "./manifest-file.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

const rows = Number(process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : 2000);
const keep = option("--keep");
/** Another entry point than the bin (an experiment's copy of dist/cli/main.js). */
const entry = option("--entry") ?? BIN;
/** More arguments for `kie-batch worker` (e.g. "--concurrency-archive 16"). */
const workerArgs = option("--args")?.split(" ").filter(Boolean) ?? [];
/** Node flags for the worker (e.g. "--max-semi-space-size=32"). */
const nodeArgs = option("--node-args")?.split(" ").filter(Boolean) ?? [];
/** `--no-profile`: the CPU figure alone, without the profiler's own cost. */
/** `--baseline`: first the plain BullMQ worker (one process, 16 jobs at once) on the same rows, for the same split. */
const profile = !process.argv.includes("--no-profile");
const profDir = keep ?? join(ROOT, ".tmp", `cpu-prof-${process.pid}`);
await mkdir(profDir, { recursive: true });
const redisDir = join(ROOT, ".tmp", `profile-redis-${process.pid}`);
const external = option("--redis");
if (!external) await mkdir(redisDir, { recursive: true });
const privateRedis = external ? undefined : await startPrivateRedis(redisDir);
const ctx = await createContext({
  quick: true,
  redisUrl: external ?? privateRedis!.url,
  privateRedis: !external,
});
const sim = await startLiftedSimulator();
try {
  const file = join(ctx.dir, "profile.csv");
  await writeCsvManifest(file, rows, { promptLength: 300 });
  if (process.argv.includes("--baseline")) {
    const base = await runBaselinePipeline(ctx, sim.url, {
      rows,
      workers: 1,
      promptLength: 300,
      concurrency: 16,
    });
    console.log(
      `plain BullMQ baseline, 1 process: ${(rows / base.seconds).toFixed(0)} rows/s, ${(base.cpuMs / rows).toFixed(2)} CPU ms/row (user ${(base.cpuSplitMs.user / rows).toFixed(2)}, system ${(base.cpuSplitMs.system / rows).toFixed(2)})`,
    );
  }
  const dep = await createDeployment(ctx, "profile", sim);
  // Enqueued first, so the Redis command counts below are the worker's (and the wait's HGETALLs).
  await dep.enqueue(file, "profile");
  const before = await commandStats();
  const worker = spawnNode(
    "profiled worker",
    [
      ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []),
      ...nodeArgs,
      entry,
      "worker",
      ...workerArgs,
    ],
    dep.env,
  );
  await worker.waitForLine(/worker started/, 120_000);
  const cpu0 = worker.cpuMs();
  const split0 = worker.cpuSplitMs();
  const started = performance.now();
  await dep.waitFinished("profile", Math.max(600_000, rows * 100));
  const after = await commandStats();
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = worker.cpuMs() - cpu0;
  const split = worker.cpuSplitMs();
  await worker.stop(30_000);
  await dep.close();
  const perRow = [...after]
    .map(([cmd, calls]) => [cmd, (calls - (before.get(cmd) ?? 0)) / rows] as const)
    .filter(([, n]) => n >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  console.log(
    `Redis commands per row: ${perRow.reduce((a, [, n]) => a + n, 0).toFixed(1)} (${perRow.map(([c, n]) => `${c} ${n.toFixed(1)}`).join(", ")})`,
  );
  console.log(
    `${rows} rows in ${seconds.toFixed(1)} s: ${(rows / seconds).toFixed(0)} rows/s, ${(cpuMs / rows).toFixed(2)} CPU ms/row (user ${((split.user - split0.user) / rows).toFixed(2)}, system ${((split.system - split0.system) / rows).toFixed(2)})`,
  );
  if (profile) {
    const name = (await readdir(profDir)).find((f) => f.endsWith(".cpuprofile"));
    if (!name) throw new Error(`no profile written in ${profDir}`);
    report(JSON.parse(await readFile(join(profDir, name), "utf8")) as CpuProfile);
    if (keep) console.log(`profile: ${join(profDir, name)}`);
  }
} finally {
  await stopAll();
  await sim.close();
  await ctx.close();
  await privateRedis?.close();
  await rm(redisDir, { recursive: true, force: true });
  if (!keep) await rm(profDir, { recursive: true, force: true });
}

async function commandStats(): Promise<Map<string, number>> {
  const text = (await ctx.redis.info("commandstats")) as string;
  const out = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(match[1]!, Number(match[2]));
  return out;
}

function where(url: string): string {
  const at = url.lastIndexOf("node_modules/");
  if (at !== -1)
    return (
      url
        .slice(at + "node_modules/".length)
        .split("/")
        .slice(0, 1)[0] ?? url
    );
  if (url.includes("/dist/")) return `kie-batch ${url.slice(url.indexOf("/dist/") + 6)}`;
  if (url.startsWith("node:")) return url;
  return url === "" ? "(native)" : url;
}

function report(profile: CpuProfile): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const frames = new Map<string, number>();
  const packages = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const label = `${frame.functionName || "(anonymous)"} ${where(frame.url)}:${frame.lineNumber + 1}`;
    frames.set(label, (frames.get(label) ?? 0) + us);
    const pkg = where(frame.url).split(" ")[0] === "kie-batch" ? "kie-batch" : where(frame.url);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const idle = [...frames].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`\nbusy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled`);
  console.log("\ntop frames by self time (% of busy):");
  for (const [label, us] of [...frames]
    .filter(([k]) => !k.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30))
    console.log(`  ${pct(us)}  ${label}`);
  // Inclusive time: each sample counts once for every distinct frame on its stack.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!frame.url.includes("/dist/") && !frame.url.includes("node_modules/")) continue;
      seen.add(`${frame.functionName || "(anonymous)"} ${where(frame.url)}:${frame.lineNumber + 1}`);
    }
    for (const label of seen)
      inclusive.set(label, (inclusive.get(label) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  console.log("\ntop frames by inclusive time (% of busy), kie-batch and packages only:");
  for (const [label, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40))
    console.log(`  ${pct(us)}  ${label}`);
  console.log("\nby package (JavaScript frames; native work such as GC and socket writes left out):");
  for (const [pkg, us] of [...packages]
    .filter(([k]) => k !== "(native)")
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15))
    console.log(`  ${pct(us)}  ${pkg}`);
}
