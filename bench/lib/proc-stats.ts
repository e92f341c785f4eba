/**
 * CPU time and peak memory of a process and its descendants, read from /proc (Linux): a spawned
 * `kie-batch` may be a tree (a loader that forks), and every process of it counts.
 */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: /proc reports CPU time in these ticks (100 on every Linux build that matters here). */
const TICKS_PER_SECOND = 100;

interface Stat {
  ppid: number;
  /** utime + stime + cutime + cstime: the process's own CPU and that of its reaped children. */
  cpuTicks: number;
  /** utime + cutime: the part of cpuTicks spent running the process's own code. */
  userTicks: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    const n = (field: number) => Number(fields[field - 3]);
    return { ppid: n(4), cpuTicks: n(14) + n(15) + n(16) + n(17), userTicks: n(14) + n(16) };
  } catch {
    return undefined; // gone
  }
}

/** `root` and every live descendant. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(name));
    children.set(stat.ppid, list);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** CPU milliseconds of the tree so far, in user mode and in the kernel (system calls: socket and file writes). */
export function treeCpuSplitMs(root: number): { user: number; system: number } {
  let all = 0;
  let user = 0;
  for (const pid of processTree(root)) {
    const stat = readStat(pid);
    all += stat?.cpuTicks ?? 0;
    user += stat?.userTicks ?? 0;
  }
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  return { user: ms(user), system: ms(all - user) };
}

/** CPU milliseconds (user + system) of the tree so far. */
export function treeCpuMs(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.cpuTicks ?? 0;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

function statusKb(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Peak resident memory (VmHWM, the kernel's high-water mark) of the tree, summed, in MB. */
export function treePeakRssMb(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) kb += statusKb(pid, "VmHWM");
  return kb / 1024;
}

/** Context switches of a process tree's threads: sleeps (voluntary) and preemptions (involuntary). */
export interface ContextSwitches {
  voluntary: number;
  involuntary: number;
}

/** One process's live threads' counts (/proc/PID/task: a thread that ended takes its counts along). */
function processContextSwitches(pid: number, into: ContextSwitches): void {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return; // gone
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      into.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
      into.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    } catch {
      // the thread ended
    }
  }
}

/**
 * Context switches of the tree's live threads so far. A voluntary one is a thread going to sleep
 * (a wait for a socket, a timer, another thread): a count of hand-offs that load moves little. An
 * involuntary one is a preemption, which rises with how busy the machine is. Threads that end
 * take their counts with them: a worker's threads (its file threads, libuv's pool, V8's) live for
 * the whole run, so differences between two reads hold.
 */
export function treeContextSwitches(root: number): ContextSwitches {
  const total = { voluntary: 0, involuntary: 0 };
  for (const pid of processTree(root)) processContextSwitches(pid, total);
  return total;
}
