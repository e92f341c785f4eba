/**
 * The earlier bench's child-process figures, kept: the sources compiled by `tsc` (as an installed
 * package runs `dist/`) enqueue the big file in `bench/enqueue-child.mjs`; a dry run gives the
 * validation rate; an idle child under plain node and under tsx gives the loader's fixed cost.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { BenchContext } from "../lib/context.js";
import { type Figure, fmt } from "../lib/figures.js";
import { ROOT } from "../lib/processes.js";

const run = promisify(execFile);

async function runChild(
  ctx: BenchContext,
  moduleRoot: string,
  args: string[],
  options: { tsx?: boolean } = {},
): Promise<Record<string, number>> {
  const child = join(ROOT, "bench", "enqueue-child.mjs");
  const { stdout } = await run(
    process.execPath,
    [...(options.tsx ? ["--import", "tsx"] : []), child, moduleRoot, ...args],
    { env: { ...process.env, REDIS_URL: ctx.redisUrl }, maxBuffer: 1 << 20, cwd: ROOT },
  );
  return JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as Record<string, number>;
}

/** `tsc` with the build settings into `outDir` (inside the checkout, so node_modules resolve). */
async function compileSources(ctx: BenchContext, outDir: string): Promise<void> {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  try {
    await run(
      process.execPath,
      [tsc, "-p", "tsconfig.build.json", "--outDir", outDir, "--sourceMap", "false"],
      {
        cwd: ROOT,
        maxBuffer: 16 << 20,
      },
    );
  } catch (error) {
    if (!existsSync(join(outDir, "producer", "index.js"))) throw error;
    ctx.log("  (tsc reported type errors elsewhere in the tree; the compiled producer is used anyway)");
  }
  // tsc emits JavaScript only: the Redis scripts, read beside the modules that run them, are
  // copied as the build copies them (scripts/copy-lua.mjs).
  const src = join(ROOT, "src");
  for (const file of await readdir(src, { recursive: true })) {
    if (!file.endsWith(".lua")) continue;
    await mkdir(dirname(join(outDir, file)), { recursive: true });
    await copyFile(join(src, file), join(outDir, file));
  }
}

export async function compiledChildFigures(
  ctx: BenchContext,
  big: string,
  bigRows: number,
): Promise<Figure[]> {
  const compiled = await mkdtemp(join(ROOT, ".tmp", "bench-dist-"));
  try {
    await compileSources(ctx, compiled);
    const dry = await runChild(ctx, compiled, [big, ctx.newPrefix("dry"), "--dry-run"]);
    const prefix = ctx.newPrefix("compiled");
    const result = await runChild(ctx, compiled, [big, prefix]);
    await ctx.dropPrefix(prefix);
    if (result.enqueued !== bigRows)
      throw new Error(`the compiled producer enqueued ${result.enqueued} of ${bigRows}`);
    const peak = Math.max(result.peakRssHwmMb ?? 0, result.peakRssSampledMb ?? 0);
    const idleCompiled = await runChild(ctx, compiled, ["-", "-", "--idle"]);
    const idleTsx = await runChild(ctx, join(ROOT, "src"), ["-", "-", "--idle"], { tsx: true });
    ctx.log(
      `  compiled child: ${fmt(bigRows / result.seconds!)} jobs/s, peak ${fmt(peak)} MB; dry run ${fmt(dry.total! / dry.seconds!)} rows/s; idle ${fmt(idleCompiled.peakRssHwmMb)} MB compiled, ${fmt(idleTsx.peakRssHwmMb)} MB under tsx`,
    );
    const group = "enqueue";
    return [
      {
        group,
        figure: `enqueue peak RSS, ${fmt(bigRows)} rows, compiled sources in a child`,
        unit: "MB",
        measured: peak,
        goal: "-",
      },
      {
        group,
        figure: `--dry-run validation rate, ${fmt(bigRows)} rows, compiled`,
        unit: "rows/s",
        measured: dry.total! / dry.seconds!,
        goal: "-",
      },
      {
        group,
        figure: "idle footprint with the modules loaded: tsx vs compiled",
        unit: "MB",
        measured: idleTsx.peakRssHwmMb,
        baseline: idleCompiled.peakRssHwmMb,
        ratio: idleTsx.peakRssHwmMb! / idleCompiled.peakRssHwmMb!,
        goal: "-",
      },
    ];
  } finally {
    await rm(compiled, { recursive: true, force: true });
  }
}
