/**
 * Callbacks waiting for their tasks to finish: one interval checks them all, and only while any
 * wait (no timer per task). A finished task's callback goes to the CallbackSender.
 */
import { CallbackSender } from "./callbacks.js";
import type { Counters } from "./stats.js";
import type { TaskEntry } from "./tasks.js";

/** How often pending callbacks are checked for finished tasks, real ms (only while any are pending). */
const CALLBACK_SWEEP_MS = 20;

export class CallbackSweep {
  private readonly callbacks: CallbackSender;
  private readonly pendingCallbacks = new Set<TaskEntry>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    counters: Counters,
    hmacKey: string | undefined,
    private readonly now: () => number,
    /** The callback body of a finished task. */
    private readonly bodyOf: (task: TaskEntry) => unknown,
  ) {
    this.callbacks = new CallbackSender(
      {
        sent: () => counters.callbacksSent++,
        failed: () => counters.callbacksFailed++,
        abandoned: () => {
          counters.callbacksAbandoned = (counters.callbacksAbandoned ?? 0) + 1;
        },
      },
      hmacKey,
    );
  }

  /** Sends the task's callback once it completes. */
  add(task: TaskEntry): void {
    this.pendingCallbacks.add(task);
    this.scheduleSweep();
  }

  /** One interval for all pending callbacks, and only while there are any: no timer per task. */
  private scheduleSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(), CALLBACK_SWEEP_MS);
    this.sweepTimer.unref();
  }

  sweep(): void {
    const now = this.now();
    for (const task of this.pendingCallbacks) {
      if (now < task.completesAt) continue;
      this.pendingCallbacks.delete(task);
      this.callbacks.send(task.callBackUrl!, task.taskId, this.bodyOf(task));
    }
    if (this.pendingCallbacks.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.pendingCallbacks.clear();
    await this.callbacks.close();
  }
}
