import type { Logger } from "../core/logger.js";

export interface Periodic {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `task` now and then every `everyMs`, never two at once; a failed run is logged and the
 * next one comes on time. The timer does not keep the process alive.
 */
export function periodic(task: () => Promise<void>, everyMs: number, log: Logger, what: string): Periodic {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () => {
    if (running || stopped) return;
    running = task()
      .catch((error: unknown) => log.warn({ err: error }, `${what} failed`))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, everyMs);
  timer.unref();
  const first = setImmediate(run);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearImmediate(first);
      await running;
    },
  };
}
