// A checkout's dist/ kept in step with src/, so the bin always runs compiled JavaScript and never
// runs a stale build. `npm run build` (scripts/build.mjs: tsc, type-checked) writes a stamp of
// every source's mtime and size; the bin and the test setup compare it with src/ (a few ms) and,
// when a file changed, was added or was removed, transpile just those files with TypeScript's
// per-file transpiler (the project sets isolatedModules, so the JavaScript is what tsc emits).
// Type errors do not stop that rebuild, as they would not stop tsx: `npm run typecheck` checks.

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";

/** Written last by every build: what the sources looked like when the build read them. */
export const STAMP_FILE = join("dist", ".build-stamp.json");
/** One build at a time per checkout (bins started together, the test setup, `npm run build`). */
export const LOCK_FILE = join(".tmp", "build.lock");
/** Files whose change changes every output. */
const CONFIG_FILES = ["tsconfig.json", "tsconfig.build.json"];
/** A lock older than this is a builder that died (a full tsc build takes well under a minute). */
const LOCK_ABANDONED_MS = 5 * 60_000;
const LOCK_POLL_MS = 100;

export class BuildError extends Error {
  name = "BuildError";
}

const posix = (path) => path.split(sep).join("/");

/** Every input of the build, `path -> "mtimeMs:size"`, paths relative to `root`, "/"-separated. */
export function sourceState(root) {
  const state = {};
  const note = (path) => {
    const stat = statSync(join(root, path));
    state[posix(path)] = `${stat.mtimeMs}:${stat.size}`;
  };
  for (const file of readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" }).sort()) {
    if (file.endsWith(".ts") || file.endsWith(".lua")) note(join("src", file));
  }
  for (const file of CONFIG_FILES) if (existsSync(join(root, file))) note(file);
  return state;
}

function readStamp(root) {
  try {
    const stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), "utf8"));
    return stamp && typeof stamp.sources === "object" ? stamp.sources : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What to rebuild: undefined when dist/ matches src/; else the source files to emit again
 * (`all` when there is no stamp or a tsconfig changed) and whether any source went away.
 */
export function staleness(root, state = sourceState(root)) {
  const stamp = readStamp(root);
  const all = !stamp || CONFIG_FILES.some((file) => stamp[file] !== state[file]);
  const changed = Object.keys(state).filter(
    (path) => path.startsWith("src/") && (all || stamp[path] !== state[path]),
  );
  const removed = stamp ? Object.keys(stamp).some((path) => !(path in state)) : false;
  if (!all && changed.length === 0 && !removed) return undefined;
  return { all, changed, removed };
}

export function writeStamp(root, state, builtBy) {
  const path = join(root, STAMP_FILE);
  mkdirSync(dirname(path), { recursive: true });
  writeAtomically(path, `${JSON.stringify({ builtBy, sources: state }, null, 1)}\n`);
}

export function removeStamp(root) {
  rmSync(join(root, STAMP_FILE), { force: true });
}

/** Readers never see half a file: a bin may be importing dist/ while another process builds. */
function writeAtomically(path, text) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** The source a dist/ file came from (undefined for files that are not build outputs). */
function sourceOf(distPath) {
  if (distPath.endsWith(".js.map")) return `${distPath.slice(0, -".js.map".length)}.ts`;
  if (distPath.endsWith(".js")) return `${distPath.slice(0, -".js".length)}.ts`;
  if (distPath.endsWith(".lua")) return distPath;
  return undefined;
}

/** Deletes outputs whose source is gone (a removed or moved module must not stay importable). */
export function pruneOrphans(root) {
  const dist = join(root, "dist");
  if (!existsSync(dist)) return 0;
  let pruned = 0;
  for (const file of readdirSync(dist, { recursive: true, encoding: "utf8" })) {
    const source = sourceOf(file);
    if (source === undefined || existsSync(join(root, "src", source))) continue;
    rmSync(join(dist, file), { force: true });
    pruned += 1;
  }
  return pruned;
}

function lockIsAbandoned(path) {
  try {
    const pid = Number(readFileSync(path, "utf8"));
    if (Date.now() - statSync(path).mtimeMs > LOCK_ABANDONED_MS) return true;
    if (!Number.isSafeInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // ESRCH: no such process; ENOENT: released meanwhile (the next try takes it).
    return error.code === "ESRCH";
  }
}

/** Waits for the checkout's build lock; returns its release. */
export async function acquireBuildLock(root) {
  const path = join(root, LOCK_FILE);
  mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx" });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
    }
    if (lockIsAbandoned(path)) rmSync(path, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

/** The checkout's TypeScript, or a BuildError saying how to get a build without it. */
export function loadTypeScript(root) {
  try {
    return createRequire(join(root, "package.json"))("typescript");
  } catch {
    throw new BuildError(
      "dist/ is missing or older than src/, and TypeScript is not installed to rebuild it: run `npm ci` in the checkout",
    );
  }
}

function compilerOptions(ts, root) {
  const host = {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new BuildError(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
    },
  };
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.build.json"), {}, host);
  // The per-file transpiler cannot read package.json's "type": NodeNext would emit CommonJS.
  // ESNext emits what NodeNext emits for this ESM package.
  return { ...parsed.options, module: ts.ModuleKind.ESNext };
}

function transpile(ts, options, root, source) {
  const input = readFileSync(join(root, source), "utf8");
  const out = join(root, "dist", `${source.slice("src/".length, -".ts".length)}.js`);
  const result = ts.transpileModule(input, { compilerOptions: options, fileName: source });
  mkdirSync(dirname(out), { recursive: true });
  writeAtomically(out, result.outputText);
  if (result.sourceMapText) {
    // The same `sources` tsc writes: the .ts file relative to the map.
    const map = JSON.parse(result.sourceMapText);
    map.sources = [posix(relative(dirname(out), join(root, source)))];
    writeAtomically(`${out}.map`, JSON.stringify(map));
  }
}

/**
 * Brings dist/ up to date with src/ when it is not (one build at a time per checkout). Returns
 * undefined when it was already fresh (nothing done, no lock taken), else what was rebuilt.
 */
export async function ensureFreshBuild(root) {
  if (!staleness(root)) return undefined;
  const release = await acquireBuildLock(root);
  try {
    const started = performance.now();
    // Read before transpiling: a source changed during the build stays stale for the next run.
    const state = sourceState(root);
    const plan = staleness(root, state);
    if (!plan) return undefined; // another process built it while this one waited
    const ts = loadTypeScript(root);
    const options = compilerOptions(ts, root);
    for (const source of plan.changed) {
      if (source.endsWith(".d.ts")) continue;
      if (source.endsWith(".ts")) transpile(ts, options, root, source);
      else {
        const out = join(root, "dist", source.slice("src/".length));
        mkdirSync(dirname(out), { recursive: true });
        copyFileSync(join(root, source), out);
      }
    }
    const pruned = plan.removed || plan.all ? pruneOrphans(root) : 0;
    writeStamp(root, state, "transpile");
    const seconds = ((performance.now() - started) / 1_000).toFixed(1);
    const what = plan.all ? "all of src/" : `${plan.changed.length} changed file(s) of src/`;
    return {
      files: plan.changed.length,
      pruned,
      summary: `rebuilt dist/ from ${what} in ${seconds} s (types unchecked: npm run typecheck)`,
    };
  } finally {
    release();
  }
}
