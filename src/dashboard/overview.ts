import type { Queue } from "bullmq";
import type { AccountState, ArchivePauseView, KeyWaitView, PauseView } from "../report/fleet-state.js";
import { type BatchStatus, readAllStatus, type StatusDeps } from "../report/status.js";
import { STAGES, type Stage } from "../worker/jobs.js";
import type { FailedRowView, FailureReader } from "./failures.js";

/** One batch on the overview: its `status --json` fields plus its first failed rows. */
export interface BatchOverview extends BatchStatus {
  /** The first failed rows in manifest order (at most the dashboard's limit); `failed` counts them all. */
  failures: FailedRowView[];
}

/** Job counts of one stage queue, by BullMQ state. */
export interface QueueOverview {
  stage: Stage;
  waiting: number;
  prioritized: number;
  delayed: number;
  active: number;
  failed: number;
}

/** What `/` shows and `/api/batches` returns. */
export interface Overview {
  /** ISO 8601. */
  generatedAt: string;
  queuePrefix: string;
  /** The longest-running pause among the deployment's accounts. */
  paused: PauseView | null;
  /** The deployment's archive pause (the store refuses), or null (absent: not read). */
  archivePaused?: ArchivePauseView | null;
  accounts: AccountState[];
  queues: QueueOverview[];
  /** Stage queues paused in BullMQ itself (bull-board's pause button): their jobs wait. */
  queuesPaused?: Stage[];
  /** API keys rows wait for that no running worker that polls holds, when any. */
  keyWaits?: KeyWaitView[];
  /** Newest first. */
  batches: BatchOverview[];
}

export interface OverviewDeps {
  status: StatusDeps;
  failures: FailureReader;
  queues: Record<Stage, Pick<Queue, "getJobCounts">>;
  queuePrefix: string;
}

const COUNTED = ["waiting", "prioritized", "delayed", "active", "failed"] as const;

async function queueOverview(stage: Stage, queue: Pick<Queue, "getJobCounts">): Promise<QueueOverview> {
  const counts = await queue.getJobCounts(...COUNTED);
  const out: QueueOverview = { stage, waiting: 0, prioritized: 0, delayed: 0, active: 0, failed: 0 };
  for (const state of COUNTED) out[state] = counts[state] ?? 0;
  return out;
}

/** Every batch of the deployment with its failures, the fleet's pause state and the queues' counts. */
export async function readOverview(deps: OverviewDeps): Promise<Overview> {
  const [all, queues] = await Promise.all([
    readAllStatus(deps.status),
    Promise.all(STAGES.map((stage) => queueOverview(stage, deps.queues[stage]))),
  ]);
  const batches = await Promise.all(
    all.batches.map(async (status) => ({
      ...status,
      failures: await deps.failures.read(status.batch, status.failed),
    })),
  );
  deps.failures.prune(batches.map((b) => b.batch));
  return {
    generatedAt: new Date(deps.status.clock.now()).toISOString(),
    queuePrefix: deps.queuePrefix,
    paused: all.paused,
    archivePaused: all.archivePaused,
    accounts: all.accounts,
    queues,
    ...(all.queuesPaused ? { queuesPaused: all.queuesPaused } : {}),
    ...(all.keyWaits ? { keyWaits: all.keyWaits } : {}),
    batches,
  };
}
