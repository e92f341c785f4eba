/**
 * `bin/kie-batch.js` in a checkout runs dist/, rebuilt first when src/ changed: in a copy of the
 * checkout (bin, scripts, src, dist, tsconfigs; node_modules linked), so editing its sources
 * leaves the real one alone.
 */
import { spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureFreshBuild } from "../../scripts/fresh-build.mjs";
import { type ChildOutput, childOutput } from "../helpers/child-output.js";
import { ROOT } from "../helpers/processes.js";

const COPIED = ["bin", "scripts", "src", "dist", "package.json", "tsconfig.json", "tsconfig.build.json"];
let checkout: string;

function bin(args: readonly string[] = ["--help"]): Promise<ChildOutput> {
  const child = spawn(process.execPath, [join(checkout, "bin", "kie-batch.js"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return childOutput(child);
}

/** Marks a source as just edited (the content may stay the same: the build goes by mtime and size). */
function touch(path: string): void {
  const now = new Date();
  utimesSync(join(checkout, path), now, now);
}

const MAIN = "src/cli/main.ts";
const REBUILT_LINE = /^kie-batch: rebuilt dist\/ from .*\n$/;

beforeAll(async () => {
  checkout = mkdtempSync(join(tmpdir(), "kie-bin-build-"));
  for (const entry of COPIED) {
    cpSync(join(ROOT, entry), join(checkout, entry), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(checkout, "node_modules"), "dir");
  // The real checkout's sources may have moved on since its build: start from a fresh one.
  await ensureFreshBuild(checkout);
});

afterAll(() => {
  if (checkout) rmSync(checkout, { recursive: true, force: true });
});

// Each run loads the whole CLI (about a second of CPU), some on a shared, busy machine.
describe("bin/kie-batch.js in a checkout", { timeout: 60_000 }, () => {
  it("runs a fresh build as it is, without a word on stderr", async () => {
    const run = await bin();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("Usage: kie-batch");
    expect(run.stderr).toBe("");
  });

  it("rebuilds an edited source before running it, and says so in one line on stderr", async () => {
    const path = join(checkout, MAIN);
    const source = await readFile(path, "utf8");
    writeFileSync(path, source.replace("Batch image generation on the KIE.ai API", "Edited description"));

    const first = await bin();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("Edited description");
    expect(first.stderr).toMatch(REBUILT_LINE);
    expect(first.stderr).toContain("1 changed file");

    const second = await bin();
    expect(second.stderr).toBe("");
    expect(second.stdout).toContain("Edited description");
  });

  it("builds an added source and deletes the output of a removed one", async () => {
    writeFileSync(join(checkout, "src/cli/added.ts"), "export const added: number = 1;\n");
    expect((await bin()).stderr).toMatch(REBUILT_LINE);
    expect(existsSync(join(checkout, "dist/cli/added.js"))).toBe(true);

    rmSync(join(checkout, "src/cli/added.ts"));
    const run = await bin();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(REBUILT_LINE);
    expect(await readdir(join(checkout, "dist/cli"))).not.toContain("added.js");
  });

  it("rebuilds a changed Redis script (.lua) too", async () => {
    const lua = "src/fleet/scripts/rate-acquire.lua";
    writeFileSync(join(checkout, lua), `-- edited\n${await readFile(join(checkout, lua), "utf8")}`);
    expect((await bin()).stderr).toMatch(REBUILT_LINE);
    expect(await readFile(join(checkout, "dist/fleet/scripts/rate-acquire.lua"), "utf8")).toMatch(
      /^-- edited\n/,
    );
  });

  it("three bins started together on a stale build: one rebuilds, the others wait for it and run", async () => {
    touch(MAIN);
    const runs = await Promise.all([bin(), bin(), bin()]);
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    expect(runs.filter((run) => REBUILT_LINE.test(run.stderr))).toHaveLength(1);
    expect(runs.filter((run) => run.stderr === "")).toHaveLength(2);
  });

  it("without TypeScript to rebuild with, a stale build is refused with the command to run", async () => {
    // node_modules with every package but typescript (each a link to the real one).
    const modules = join(checkout, "node_modules");
    rmSync(modules);
    mkdirSync(modules);
    for (const name of readdirSync(join(ROOT, "node_modules"))) {
      if (name !== "typescript") symlinkSync(join(ROOT, "node_modules", name), join(modules, name));
    }
    touch(MAIN);
    const run = await bin();
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^kie-batch: dist\/ is missing or older than src\/.*run `npm ci`/);
  });
});
