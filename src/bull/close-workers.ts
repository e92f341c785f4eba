import type { Worker } from "bullmq";
import type { Logger } from "../core/logger.js";

/**
 * Stops the stage workers (the live ones and those the fetch watchdog replaced, still finishing
 * their jobs): stops their fetching, aborts the jobs in hand (each stage releases its job), and
 * closes them. A hung processor cannot hold this past `deadlineMs`: then every one of them, live
 * or replaced, is closed by force.
 */
export async function closeWorkers(
  workers: readonly Worker[],
  retiring: ReadonlyMap<Worker, Promise<void>>,
  deadlineMs: number,
  log: Logger,
): Promise<void> {
  const all = [...workers, ...retiring.keys()];
  await Promise.all(all.map((w) => w.pause(true).catch(() => undefined)));
  for (const worker of all) worker.cancelAllJobs("shutdown");
  const graceful = Promise.all([...workers.map((w) => w.close()), ...retiring.values()]);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    graceful.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), deadlineMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    log.warn("workers did not stop in time; closing by force");
    // Replaced workers too: a hung one would keep its connection and renew its jobs' locks.
    await Promise.all(all.map((w) => w.close(true).catch(() => undefined)));
  }
}
