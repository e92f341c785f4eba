// `npm run build` (and `prepare`, so `npm ci` in a checkout builds): tsc type-checks src/ and
// emits dist/, copy-lua.mjs adds the Redis scripts, and the stamp records the sources this build
// read, so the bin can tell a stale dist/ (scripts/fresh-build.mjs). Exits non-zero on a type
// error; dist/ is still emitted and stamped then, since its JavaScript is what the sources say.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { acquireBuildLock, pruneOrphans, removeStamp, sourceState, writeStamp } from "./fresh-build.mjs";

/** tsc's exit status when it reported errors but wrote every output. */
const TSC_ERRORS_OUTPUTS_WRITTEN = 2;

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (args) => spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" }).status ?? 1;

function tscPath() {
  try {
    const manifest = createRequire(join(root, "package.json")).resolve("typescript/package.json");
    return join(dirname(manifest), "bin", "tsc");
  } catch {
    return undefined;
  }
}

async function build() {
  const tsc = tscPath();
  if (!tsc) {
    console.error("build: TypeScript is not installed: run `npm ci`");
    return 1;
  }
  const release = await acquireBuildLock(root);
  try {
    // Read before tsc: a source changed during the build leaves the build stale, as it is.
    const state = sourceState(root);
    removeStamp(root);
    const compiled = run([tsc, "-p", "tsconfig.build.json"]);
    if (compiled !== 0 && compiled !== TSC_ERRORS_OUTPUTS_WRITTEN) return compiled;
    if (run([join("scripts", "copy-lua.mjs")]) !== 0) return 1;
    pruneOrphans(root);
    writeStamp(root, state, "tsc");
    return compiled === 0 ? 0 : 1;
  } finally {
    release();
  }
}

process.exitCode = await build();
