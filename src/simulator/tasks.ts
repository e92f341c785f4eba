/**
 * Tasks and their state machine. State is never stored: it is read off the task's timestamps
 * against the clock on every read, so thousands of tasks in flight cost no timers. All times
 * here are real epoch ms; simulated durations were divided by the time scale when the task was
 * made (see `TaskTiming`).
 */
import type { GenerationParams } from "../kie/types.js";
import type { Random } from "./random.js";
import type { SimTask } from "./types.js";

export type Outcome = "success" | "fail" | "creation_failed";
export type Phase = "waiting" | "queuing" | "generating" | Outcome;

export interface TaskEntry {
  taskId: string;
  flavor: "qwen" | "jobs";
  params: GenerationParams;
  /** The create body as received, echoed as `param` in jobs-flavour records. */
  rawBody: unknown;
  callBackUrl?: string;
  outcome: Outcome;
  /** The seed the image is drawn from: the request's, or one drawn here (like the real API). */
  imageSeed: number;
  credits: number;
  /** image-to-image and edit: the sha256 of the input image the task fetched. */
  inputSha256?: string;
  createdAt: number;
  /** Until then record-info answers "recordInfo is null" (the real API's lag after a create). */
  visibleAt: number;
  queuingAt: number;
  generatingAt: number;
  completesAt: number;
  /** When the original result URLs stop answering; fixed at create, moved by expireFiles(). */
  filesExpireAt: number;
  /** Set by breakFiles(): the HTTP status the original result URLs answer (a broken file host). */
  filesBrokenWith?: number;
}

/** How simulated durations become real ones: real ms = simulated ms / timeScale. */
export interface TaskTiming {
  timeScale: number;
  latency: { minMs: number; maxMs: number };
  recordLagMs: number;
  fileTtlMs: number;
}

export interface NewTask {
  flavor: "qwen" | "jobs";
  params: GenerationParams;
  rawBody: unknown;
  callBackUrl?: string;
  credits: number;
  outcome: Outcome;
  inputSha256?: string;
}

export class TaskStore {
  private readonly tasks = new Map<string, TaskEntry>();
  /** Tasks not yet finished, ordered by completion: the in-flight count without a full scan. */
  private readonly inFlightHeap = new MinHeap<TaskEntry>((a, b) => a.completesAt - b.completesAt);
  maxInFlight = 0;

  constructor(
    private readonly timing: TaskTiming,
    private readonly random: Random,
    private readonly now: () => number,
  ) {}

  create(input: NewTask): TaskEntry {
    const { timeScale, latency, recordLagMs, fileTtlMs } = this.timing;
    const createdAt = this.now();
    const generationMs = latency.minMs + this.random.next() * (latency.maxMs - latency.minMs);
    // Whole real milliseconds after the create, so wire timestamps are integers.
    const after = (simulatedMs: number) => createdAt + Math.round(simulatedMs / timeScale);
    // The first tenth of a generation is spent waiting, the second queuing, like the market API
    // reports; a creation failure ends there instead of generating.
    const completesAt = after(input.outcome === "creation_failed" ? generationMs / 10 : generationMs);
    const task: TaskEntry = {
      taskId: this.newId(input.flavor),
      flavor: input.flavor,
      params: input.params,
      rawBody: input.rawBody,
      outcome: input.outcome,
      imageSeed: input.params.seed ?? this.random.int(0, 2 ** 32 - 1),
      credits: input.credits,
      createdAt,
      visibleAt: after(recordLagMs),
      queuingAt: Math.min(completesAt, after(generationMs / 10)),
      generatingAt: Math.min(completesAt, after(generationMs / 5)),
      completesAt,
      filesExpireAt: completesAt + Math.round(fileTtlMs / timeScale),
    };
    if (input.callBackUrl !== undefined) task.callBackUrl = input.callBackUrl;
    if (input.inputSha256 !== undefined) task.inputSha256 = input.inputSha256;
    this.tasks.set(task.taskId, task);
    this.settle();
    // At a large time scale a task may finish within its create's millisecond: never in flight.
    if (completesAt > createdAt) this.inFlightHeap.push(task);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlightHeap.size);
    return task;
  }

  get(taskId: string): TaskEntry | undefined {
    return this.tasks.get(taskId);
  }

  /** Every task, in creation order (a Map keeps insertion order). */
  all(): TaskEntry[] {
    return [...this.tasks.values()];
  }

  phase(task: TaskEntry, at = this.now()): Phase {
    if (at >= task.completesAt) return task.outcome;
    if (at >= task.generatingAt) return "generating";
    if (at >= task.queuingAt) return "queuing";
    return "waiting";
  }

  /** When the task last changed phase (the market API's `updateTime`). */
  updatedAt(task: TaskEntry, at = this.now()): number {
    const changes = [task.createdAt, task.queuingAt, task.generatingAt, task.completesAt];
    return Math.max(...changes.filter((time) => time <= at));
  }

  inFlight(): number {
    this.settle();
    return this.inFlightHeap.size;
  }

  /** Finishes every unfinished task at this instant (with its drawn outcome). */
  completeAll(): void {
    const now = this.now();
    // Tasks already done keep their real completion time.
    this.settle();
    for (const task of this.inFlightHeap.drain()) {
      // The file lifetime counts from completion, so it moves with it.
      task.filesExpireAt = now + (task.filesExpireAt - task.completesAt);
      task.completesAt = now;
      task.queuingAt = Math.min(task.queuingAt, now);
      task.generatingAt = Math.min(task.generatingAt, now);
      // A task finished early is visible at once: the lag must not hide a finished result.
      task.visibleAt = Math.min(task.visibleAt, now);
    }
  }

  /** Public snapshot for `handle.task()`. */
  snapshot(task: TaskEntry, imageUrls: string[]): SimTask {
    const phase = this.phase(task);
    const state: SimTask["state"] = phase === "queuing" ? "waiting" : phase === "fail" ? "fail" : phase;
    const snapshot: SimTask = {
      taskId: task.taskId,
      flavor: task.flavor,
      params: { ...task.params },
      state,
      createdAt: task.createdAt,
      completesAt: task.completesAt,
      imageUrls: state === "success" ? imageUrls : [],
      credits: task.credits,
    };
    if (task.callBackUrl !== undefined) snapshot.callBackUrl = task.callBackUrl;
    if (task.inputSha256 !== undefined) snapshot.inputSha256 = task.inputSha256;
    return snapshot;
  }

  private settle(): void {
    const now = this.now();
    while (this.inFlightHeap.size > 0 && this.inFlightHeap.peek()!.completesAt <= now)
      this.inFlightHeap.pop();
  }

  private newId(flavor: "qwen" | "jobs"): string {
    for (;;) {
      // Market task ids are bare hex; the seed's example is "qwen_task_xyz789".
      const id = flavor === "qwen" ? `qwen_task_${this.random.hex(16)}` : this.random.hex(32);
      if (!this.tasks.has(id)) return id;
    }
  }
}

/** A binary min-heap: enough for "which tasks have finished by now" in O(log n) per task. */
class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (this.compare(items[index]!, items[parent]!) >= 0) break;
      [items[index], items[parent]] = [items[parent]!, items[index]!];
      index = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < items.length && this.compare(items[left]!, items[smallest]!) < 0) smallest = left;
      if (right < items.length && this.compare(items[right]!, items[smallest]!) < 0) smallest = right;
      if (smallest === index) return top;
      [items[index], items[smallest]] = [items[smallest]!, items[index]!];
      index = smallest;
    }
  }

  /** Empties the heap and returns what it held, in no particular order. */
  drain(): T[] {
    const items = this.items;
    this.items = [];
    return items;
  }
}
