import type { Job } from "bullmq";
import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import { jobDataOf } from "../worker/jobs.js";
import type { StageDeps } from "../worker/ports.js";
import type { RowJob, StageDefinition } from "../worker/stage.js";

/** What the runner hands its job ends: the ledger, the stages' ports, a logger. */
interface EndOptions {
  ledger: Ledger;
  deps: StageDeps;
  log: Logger;
}

/**
 * Safety net: a job BullMQ gave up on must leave its row failed, never stuck mid-pipeline, and
 * give back what the row holds for the stage (a reservation). Awaited through the runner's
 * `settled()`.
 */
export async function recordGiveUp<T extends RowJob>(
  definition: StageDefinition<T>,
  job: Job,
  error: Error,
  options: EndOptions,
): Promise<void> {
  const stage = definition.name;
  const parsed = definition.schema.safeParse(jobDataOf(job.id, job.data));
  const data = parsed.success ? parsed.data : undefined;
  if (!data?.batch || !data.rowId) return;
  const where = { stage, batch: data.batch, row: data.rowId, job: job.id };
  try {
    const moved = await options.ledger.transition(data.batch, data.rowId, {
      from: definition.owns,
      to: "failed",
      set: { error: `${stage} stage gave up: ${error.message}` },
      rowOnRefusal: true,
    });
    // A row cancelled while its job ran stays cancelled, and what it holds for the stage goes
    // back all the same (nothing else would give it): the job's data, stored only under its
    // lock, says whether a create of it may be out.
    if (moved.ok || moved.row?.status === "cancelled") await definition.onGiveUp?.(data, options.deps);
  } catch (err) {
    options.log.error({ err, ...where }, "could not record a failed job");
  }
}

/** A parked job's completion: the stage's `onParked`, its failure left to the reconciler. */
export async function afterParked<T extends RowJob>(
  definition: StageDefinition<T>,
  data: T,
  options: EndOptions,
): Promise<void> {
  try {
    await definition.onParked?.(data, options.deps);
  } catch (err) {
    // The row is queued without a job: the reconciler's sweep gives it one.
    options.log.warn({ err, stage: definition.name, batch: data.batch, row: data.rowId }, "after parking");
  }
}
