/**
 * `npm run bench`: the scale suite of issue 10. Each group measures kie-batch against a baseline
 * in the same run, on the same Redis and machine, and the driver prints one table
 * (figure | measured | baseline | ratio | goal | met?) and writes it as JSON.
 *
 *   npm run bench                      the full suite (long: 200,000 pipeline rows, 1M-row enqueue)
 *   npm run bench -- --quick           small sizes, a few minutes on 2 cores
 *   npm run bench -- --only pipeline   one group (comma-separated for several)
 *   npm run bench -- --set pipelineRows=500   override one size (see bench/lib/group.ts)
 *   npm run bench -- --redis redis://host:6379  use that Redis instead of a private redis-server
 *   npm run bench -- --json out.json   where the results go (default .tmp/bench-results.json)
 *
 * By default the bench starts its own `redis-server` (no persistence, a free port): its global
 * counters are the bench's alone (the budget-wait figure needs that) and it goes away at the end.
 * Every key, process and temp file the bench creates is removed at the end, also after a failure.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { budgetWaitGroup } from "./groups/budget-wait.js";
import { bytesGroup } from "./groups/bytes.js";
import { createsGroup } from "./groups/creates.js";
import { enqueueGroup } from "./groups/enqueue.js";
import { keysGroup } from "./groups/keys.js";
import { opsGroup } from "./groups/ops.js";
import { pipelineGroup } from "./groups/pipeline.js";
import { pollsGroup } from "./groups/polls.js";
import { createContext } from "./lib/context.js";
import { type Figure, renderTable } from "./lib/figures.js";
import { type BenchGroup, FULL, QUICK, type Sizes } from "./lib/group.js";
import { ROOT, stopAll } from "./lib/processes.js";
import { type PrivateRedis, startPrivateRedis } from "./lib/redis-server.js";

const GROUPS: BenchGroup[] = [
  bytesGroup,
  pipelineGroup,
  budgetWaitGroup,
  pollsGroup,
  createsGroup,
  keysGroup,
  enqueueGroup,
  opsGroup,
];

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

function options(name: string): string[] {
  return process.argv.flatMap((arg, i) =>
    arg === name && process.argv[i + 1] ? [process.argv[i + 1]!] : [],
  );
}

if (process.argv.includes("--help")) {
  console.log(
    "npm run bench -- [--quick] [--only GROUP[,GROUP]] [--set size=N]... [--redis URL] [--json FILE]",
  );
  for (const group of GROUPS) console.log(`  ${group.name.padEnd(12)} ${group.about}`);
  console.log(`  sizes (full): ${JSON.stringify(FULL)}\n  sizes (quick): ${JSON.stringify(QUICK)}`);
  process.exit(0);
}

const quick = process.argv.includes("--quick");
const sizes: Sizes = { ...(quick ? QUICK : FULL) };
for (const setting of options("--set")) {
  const [name, value] = setting.split("=");
  if (!name || !(name in sizes) || value === undefined || !Number.isFinite(Number(value)))
    throw new Error(`--set ${setting}: expected one of ${Object.keys(sizes).join(", ")} = a number`);
  sizes[name as keyof Sizes] = Number(value);
}
const only = option("--only")?.split(",");
for (const name of only ?? []) {
  if (!GROUPS.some((g) => g.name === name))
    throw new Error(`--only ${name}: expected one of ${GROUPS.map((g) => g.name).join(", ")}`);
}
const groups = GROUPS.filter((g) => !only || only.includes(g.name));
const jsonPath = option("--json") ?? join(ROOT, ".tmp", "bench-results.json");

function machine() {
  const redisVersion = (() => {
    try {
      return execFileSync("redis-server", ["--version"], { encoding: "utf8" }).trim();
    } catch {
      return "unknown";
    }
  })();
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis: redisVersion,
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

const externalRedis = option("--redis");
let privateRedis: PrivateRedis | undefined;
const startedAt = new Date();
const figures: Figure[] = [];
const errors: { group: string; error: string }[] = [];
const machineAtStart = machine();
console.log(
  `kie-batch bench (${quick ? "quick" : "full"}): ${machineAtStart.nproc} CPUs, ${machineAtStart.memoryGb} GB, node ${machineAtStart.node}, load ${machineAtStart.loadAverage.join(" ")}`,
);
const redisDir = join(ROOT, ".tmp", `bench-redis-${process.pid}`);
if (!externalRedis) {
  await mkdir(redisDir, { recursive: true });
  privateRedis = await startPrivateRedis(redisDir);
}
const ctx = await createContext({
  quick,
  redisUrl: externalRedis ?? privateRedis!.url,
  privateRedis: privateRedis !== undefined,
});
let interrupted = false;
const onSignal = () => {
  interrupted = true;
  console.log("\ninterrupted: cleaning up");
  void cleanup().then(() => process.exit(130));
};
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);

let cleaned: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    await stopAll();
    const deleted = await ctx.close().catch(() => 0);
    await privateRedis?.close();
    const { rm } = await import("node:fs/promises");
    await rm(redisDir, { recursive: true, force: true });
    console.log(
      `cleaned up: processes stopped, ${deleted} leftover keys deleted${privateRedis ? ", private redis-server stopped" : ""}, temp files removed`,
    );
  })();
  return cleaned;
}

try {
  console.log(`Redis: ${ctx.redisUrl}${privateRedis ? " (private redis-server)" : ""}`);
  for (const group of groups) {
    if (interrupted) break;
    console.log(`\n== ${group.name}: ${group.about}`);
    const groupStarted = performance.now();
    try {
      figures.push(...(await group.run(ctx, sizes)));
    } catch (error) {
      console.log(`  FAILED: ${(error as Error).stack ?? error}`);
      errors.push({ group: group.name, error: String((error as Error).message ?? error) });
    } finally {
      await stopAll();
    }
    console.log(`  (${Math.round((performance.now() - groupStarted) / 1000)} s)`);
  }
} finally {
  await cleanup();
}

console.log(`\n${renderTable(figures)}`);
for (const figure of figures.filter((f) => f.note)) console.log(`  ${figure.figure}: ${figure.note}`);
for (const { group, error } of errors) console.log(`  group ${group} FAILED: ${error.split("\n")[0]}`);
const result = {
  mode: quick ? "quick" : "full",
  startedAt: startedAt.toISOString(),
  seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
  machine: { ...machineAtStart, loadAverageAtEnd: machine().loadAverage },
  redis: privateRedis ? "private redis-server" : externalRedis,
  sizes,
  figures,
  errors,
};
await mkdir(dirname(jsonPath), { recursive: true });
await writeFile(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nresults: ${jsonPath}`);
if (errors.length > 0) process.exitCode = 1;
