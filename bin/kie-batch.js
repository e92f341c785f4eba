#!/usr/bin/env node
// Entry point: always the compiled JavaScript in dist/. In a checkout (src/ present) dist/ is
// first brought up to date with src/ (scripts/fresh-build.mjs: a few ms when nothing changed,
// one line on stderr when it rebuilt), so the CLI never runs a stale build and never pays a
// transpiler at run time. An installed package has no src/ and runs dist/ as shipped.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const freshBuild = join(root, "scripts", "fresh-build.mjs");
if (existsSync(join(root, "src")) && existsSync(freshBuild)) {
  const { ensureFreshBuild } = await import(pathToFileURL(freshBuild).href);
  try {
    const rebuilt = await ensureFreshBuild(root);
    if (rebuilt) process.stderr.write(`kie-batch: ${rebuilt.summary}\n`);
  } catch (error) {
    process.stderr.write(`kie-batch: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
await import(pathToFileURL(join(root, "dist", "cli", "main.js")).href);
