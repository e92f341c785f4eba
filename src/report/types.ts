import type { Queue } from "bullmq";
import type { Ledger } from "../ledger/index.js";
import type { PollJob, Stage, SubmitJob } from "../worker/jobs.js";
import type { SubmitPriority } from "../worker/ports.js";

/** Where a command prints: stdout in the CLI, a collecting stream in tests. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** The parts of the stage queues the operator commands use (`QueueSet` is one). */
export interface OpsQueues {
  readonly queues: Record<Stage, Pick<Queue, "remove" | "getJobState" | "getJob">>;
  addSubmit(data: SubmitJob, options: SubmitPriority): Promise<void>;
  addPoll(data: PollJob, delayMs: number): Promise<void>;
}

/** The ledger calls the operator commands make. */
export type OpsLedger = Pick<
  Ledger,
  | "getBatch"
  | "listBatches"
  | "rows"
  | "transition"
  | "releaseReservation"
  | "keepUncertain"
  | "setBudget"
  | "oldestUnarchived"
>;
