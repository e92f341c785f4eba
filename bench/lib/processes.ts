/**
 * Spawned processes of a bench: `kie-batch` through its bin (as a user runs it from a checkout) or
 * a bench child. Each keeps the tail of its output, samples its tree's peak RSS (so a process that
 * exits on its own still has a figure), and reads its CPU time from /proc.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import {
  type ContextSwitches,
  treeContextSwitches,
  treeCpuMs,
  treeCpuSplitMs,
  treePeakRssMb,
} from "./proc-stats.js";

export const ROOT = join(import.meta.dirname, "..", "..");
export const BIN = join(ROOT, "bin", "kie-batch.js");

export interface BenchProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the first output line matching `pattern` (already seen lines count). */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** CPU ms of the process tree so far. */
  cpuMs(): number;
  /** cpuMs split into user mode and kernel time. */
  cpuSplitMs(): { user: number; system: number };
  /** Context switches of the tree's live threads so far (proc-stats.ts). */
  contextSwitches(): ContextSwitches;
  /** Highest tree VmHWM seen so far (sampled every 100 ms and on demand), MB. */
  peakRssMb(): number;
  /** Resolves with the exit code once the process has exited (by itself). */
  exited(): Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** The last lines of output, for error messages. */
  tail(): string;
}

const live = new Set<BenchProcess>();

/** Stops every process a bench started and has not stopped (the driver calls it in `finally`). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(2_000)));
}

export function spawnBin(name: string, args: string[], env: Record<string, string>): BenchProcess {
  return spawnNode(name, [BIN, ...args], env);
}

export function spawnNode(name: string, args: string[], env: Record<string, string>): BenchProcess {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  const pid = child.pid;
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let exitCode: number | null | undefined;
  const exit = once(child, "exit").then(([code]) => {
    exitCode = code as number | null;
    return exitCode;
  });
  let peak = 0;
  const sample = () => {
    if (exitCode === undefined) peak = Math.max(peak, treePeakRssMb(pid));
  };
  const sampler = setInterval(sample, 100);
  exit.finally(() => clearInterval(sampler));

  let partial = "";
  const onData = (chunk: Buffer) => {
    const text = partial + chunk.toString("utf8");
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);

  const handle: BenchProcess = {
    name,
    pid,
    child,
    waitForLine(pattern, timeoutMs) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms\n${handle.tail()}`));
        }, timeoutMs);
        const waiter = {
          pattern,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
        void exit.then((code) => {
          clearTimeout(timer);
          if (waiters.includes(waiter))
            reject(new Error(`${name} exited (${code}) before printing ${pattern}\n${handle.tail()}`));
        });
      });
    },
    cpuMs: () => treeCpuMs(pid),
    cpuSplitMs: () => treeCpuSplitMs(pid),
    contextSwitches: () => treeContextSwitches(pid),
    peakRssMb() {
      sample();
      return peak;
    },
    exited: () => exit,
    async stop(graceMs = 10_000) {
      if (exitCode === undefined) {
        sample();
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exit;
        clearTimeout(timer);
      }
      live.delete(handle);
    },
    tail: () => lines.slice(-20).join("\n"),
  };
  live.add(handle);
  void exit.then(() => live.delete(handle));
  return handle;
}
