import { FILE_LIFETIME_DEFAULT_MS } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import type { BatchSummary } from "../ledger/index.js";
import type { Stage } from "../worker/jobs.js";
import { requireBatch } from "./batch.js";
import type { AccountState, ArchivePauseView, FleetState, KeyWaitView, PauseView } from "./fleet-state.js";
import type { OpsLedger } from "./types.js";

/** How long KIE keeps a finished task's files, by its docs (KIE_FILE_LIFETIME's default). */
export const FILE_LIFETIME_MS = FILE_LIFETIME_DEFAULT_MS;
/** The docs also say a result URL may last only a day: past this age an unarchived image is at risk. */
export const URL_RISK_AGE_MS = 86_400_000;

/** The finished image that has waited longest for its archive. */
interface OldestUnarchived {
  rowId: string;
  /** ISO 8601: the provider's completion time. */
  completedAt: string;
  /** ISO 8601: `completedAt` + 14 days, when KIE deletes the files. */
  expiresAt: string;
  ageMs: number;
  /** Until `expiresAt`; 0 once past it. */
  timeLeftMs: number;
  /** Older than 24 h: its URL may already be gone. */
  warning: boolean;
}

/** `status --json` of one batch. The first keys are a stable contract; more may be added. */
export interface BatchStatus {
  batch: string;
  total: number;
  queued: number;
  submitted: number;
  generating: number;
  archiving: number;
  archived: number;
  failed: number;
  cancelled: number;
  waitingBudget: number;
  uncertain: number;
  creditsEstimated: number;
  creditsReserved: number;
  creditsSpent: number;
  paused: PauseView | null;
  /**
   * Credits of creates whose reply was lost (`uncertain`): KIE may have charged them, so they are
   * held against the budget for good. Always set by `status`; optional for snapshots built elsewhere.
   */
  creditsUncertain?: number;
  /**
   * Archiving paused for the deployment (the store refuses): `archiving` rows wait for it. Always
   * set by `status`; optional for snapshots built elsewhere.
   */
  archivePaused?: ArchivePauseView | null;
  /** Stage queues paused in BullMQ (bull-board's pause button); set by `status` when any is. */
  queuesPaused?: Stage[];
  /** Credit budget, null when none. */
  budget: number | null;
  resubmits: number;
  /**
   * Rows the reconciler found without the job their state needs and repaired (a worker died
   * between a state change and the next job). Always set by `status`; optional for snapshots
   * built elsewhere.
   */
  repaired?: number;
  /**
   * Of `archived`, rows archived as copies of an earlier row's images (same request and seed, reuse
   * across batches): no create, 0 credits. Always set by `status`; optional for snapshots built elsewhere.
   */
  reused?: number;
  /** The batch was enqueued with `--no-reuse` (every row is created). */
  noReuse?: boolean;
  /** When `kie-batch cancel` last ran on it (ISO 8601); absent once `retry` or an append cleared it. */
  cancelledAt?: string;
  /** When `kie-batch purge` marked it (ISO 8601): a purge runs, or was cut short and must run again. */
  purging?: string;
  /** Every row is archived, failed or cancelled. */
  finished: boolean;
  oldestUnarchived: OldestUnarchived | null;
  file: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Every account of the deployment (single-batch output only; the list has it once, at the top). */
  accounts?: AccountState[];
  /** Keys rows wait for that no running worker holds (fleet-state.ts), when any (single-batch output only). */
  keyWaits?: KeyWaitView[];
}

/** `status --json` without a batch. */
export interface AllStatus {
  batches: BatchStatus[];
  paused: PauseView | null;
  archivePaused: ArchivePauseView | null;
  /** Stage queues paused in BullMQ (bull-board's pause button), when any is. */
  queuesPaused?: Stage[];
  accounts: AccountState[];
  /** Keys rows wait for that no running worker holds (fleet-state.ts), when any. */
  keyWaits?: KeyWaitView[];
}

export interface StatusDeps {
  ledger: Pick<OpsLedger, "getBatch" | "listBatches" | "oldestUnarchived">;
  /** The pause state of the deployment's accounts. */
  fleet: () => Promise<FleetState>;
  clock: Pick<Clock, "now">;
  queuePrefix?: string;
}

/** Rows that will not move by themselves any more. */
export function isFinished(
  summary: Pick<BatchSummary, "total" | "archived" | "failed" | "cancelled">,
): boolean {
  return summary.archived + summary.failed + summary.cancelled >= summary.total;
}

function oldestUnarchivedView(
  oldest: { rowId: string; completedAt: number } | undefined,
  now: number,
): OldestUnarchived | null {
  if (!oldest) return null;
  const expires = oldest.completedAt + FILE_LIFETIME_MS;
  const ageMs = Math.max(0, now - oldest.completedAt);
  return {
    rowId: oldest.rowId,
    completedAt: new Date(oldest.completedAt).toISOString(),
    expiresAt: new Date(expires).toISOString(),
    ageMs,
    timeLeftMs: Math.max(0, expires - now),
    warning: ageMs > URL_RISK_AGE_MS,
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

async function toStatus(deps: StatusDeps, summary: BatchSummary, fleet: FleetState): Promise<BatchStatus> {
  const oldest = summary.archiving > 0 ? await deps.ledger.oldestUnarchived(summary.batch) : undefined;
  return {
    batch: summary.batch,
    total: summary.total,
    queued: summary.queued,
    submitted: summary.submitted,
    generating: summary.generating,
    archiving: summary.archiving,
    archived: summary.archived,
    failed: summary.failed,
    cancelled: summary.cancelled,
    waitingBudget: summary.waitingBudget,
    uncertain: summary.uncertain,
    creditsEstimated: summary.creditsEstimated,
    creditsReserved: summary.creditsReserved,
    creditsSpent: summary.creditsSpent,
    paused: fleet.paused,
    archivePaused: fleet.archivePaused ?? null,
    ...(fleet.queuesPaused?.length ? { queuesPaused: fleet.queuesPaused } : {}),
    budget: summary.budget ?? null,
    resubmits: summary.resubmits,
    creditsUncertain: summary.creditsUncertain,
    repaired: summary.repaired ?? 0,
    reused: summary.reused ?? 0,
    ...(summary.noReuse ? { noReuse: true } : {}),
    ...(summary.cancelledAt === undefined
      ? {}
      : { cancelledAt: new Date(summary.cancelledAt).toISOString() }),
    ...(summary.purging === undefined ? {} : { purging: new Date(summary.purging).toISOString() }),
    finished: isFinished(summary),
    oldestUnarchived: oldestUnarchivedView(oldest, deps.clock.now()),
    file: summary.file ?? null,
    createdAt: new Date(summary.createdAt).toISOString(),
    updatedAt: new Date(summary.updatedAt).toISOString(),
    finishedAt: iso(summary.finishedAt),
  };
}

/** One batch's status; `unknown_batch` when it is not in the ledger. */
export async function readBatchStatus(deps: StatusDeps, batch: string): Promise<BatchStatus> {
  const [summary, fleet] = await Promise.all([
    requireBatch(deps.ledger, batch, deps.queuePrefix),
    deps.fleet(),
  ]);
  return {
    ...(await toStatus(deps, summary, fleet)),
    accounts: fleet.accounts,
    ...(fleet.keyWaits?.length ? { keyWaits: fleet.keyWaits } : {}),
  };
}

/** Every batch of the deployment, newest first, and the fleet's state. */
export async function readAllStatus(deps: StatusDeps): Promise<AllStatus> {
  const [summaries, fleet] = await Promise.all([deps.ledger.listBatches(), deps.fleet()]);
  const batches = await Promise.all(summaries.map((s) => toStatus(deps, s, fleet)));
  return {
    batches,
    paused: fleet.paused,
    archivePaused: fleet.archivePaused ?? null,
    ...(fleet.queuesPaused?.length ? { queuesPaused: fleet.queuesPaused } : {}),
    accounts: fleet.accounts,
    ...(fleet.keyWaits?.length ? { keyWaits: fleet.keyWaits } : {}),
  };
}
