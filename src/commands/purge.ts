import { randomUUID } from "node:crypto";
import type { Queue } from "bullmq";
import { type BatchSummary, checkName, type Ledger, LedgerError } from "../ledger/index.js";
import { requireBatch } from "../report/batch.js";
import { OpsError } from "../report/errors.js";
import { isFinished } from "../report/status.js";
import type { Output } from "../report/types.js";
import { STAGES, type Stage } from "../worker/jobs.js";
import { countBatchJobs, forEachBatchJobPage } from "./batch-jobs.js";
import { forEachLimit, iterate } from "./jobs.js";

const CONCURRENCY = 16;

/**
 * One purge of a batch at a time: its lease lapses this long after its holder stops renewing it
 * (a purge killed), renewed every third of it while the purge runs.
 */
const PURGE_LEASE_MS = 60_000;

/**
 * Takes the batch's purge lease, renewed until the returned function lets it go. A second purge
 * of the batch meanwhile would delete the batch's hash while this one still removes its jobs and
 * slots: a batch enqueued anew in between would lose them. Refused (`purge_running`) when another
 * purge holds it.
 */
async function holdPurgeLease(deps: PurgeDeps, batch: string): Promise<() => Promise<void>> {
  const name = `purge.${batch}`;
  const owner = randomUUID();
  if (!(await deps.ledger.claimLease(name, owner, PURGE_LEASE_MS))) {
    throw new OpsError(
      "purge_running",
      `a purge of batch ${batch} is running (another terminal or machine, or one killed in the last minute): wait for it to end, then run this again if the batch is still there`,
    );
  }
  const renew = setInterval(() => {
    deps.ledger.claimLease(name, owner, PURGE_LEASE_MS).catch(() => undefined);
  }, PURGE_LEASE_MS / 3);
  renew.unref();
  return async () => {
    clearInterval(renew);
    await deps.ledger.releaseLease(name, owner).catch(() => undefined);
  };
}

export interface PurgeDeps {
  ledger: Pick<Ledger, "getBatch" | "listBatches" | "purge" | "finishPurge" | "claimLease" | "releaseLease">;
  queues: Record<Stage, Pick<Queue, "remove" | "getJobState" | "getRanges">>;
  out: Output;
  queuePrefix?: string;
  /**
   * The in-flight slots (KIE_MAX_IN_FLIGHT) of the accounts the batch's jobs may hold. A slot of a
   * purged job is never released by its job: without this it blocks a slot of the cap for an hour.
   * @defaultValue none: slots are left to go stale
   */
  inFlight?: { releaseBatch(batch: string, options?: { ownOnly?: boolean }): Promise<number> };
  /**
   * Asked once what would go is known and printed; nothing is removed unless it resolves true.
   * @defaultValue none: remove without asking (`--yes`)
   */
  confirm?: (plan: PurgePlan) => Promise<boolean>;
}

/** What a purge would remove. */
interface PurgePlan {
  batch: string;
  /** The batch's ledger; undefined when it is already gone (purged or expired) but jobs are left. */
  summary: BatchSummary | undefined;
  /** Ids of the batch's jobs in each stage queue: the first 20 (sorted), not a million. */
  jobs: Record<Stage, string[]>;
  /** How many jobs of the batch each stage queue holds. */
  jobCounts: Record<Stage, number>;
}

/** What one stage queue lost. */
interface StagePurge {
  removed: number;
  /** Removed jobs by the state they were in. */
  byState: Record<string, number>;
  /** Jobs a worker holds: BullMQ cannot remove them; they end by themselves (their row is gone). */
  active: string[];
}

export interface PurgeReport {
  batch: string;
  /** False when the operator said no: nothing was removed. */
  confirmed: boolean;
  /** Ledger rows deleted. */
  rows: number;
  /** In-flight slots of the batch's jobs released. */
  inFlightReleased: number;
  jobs: Record<Stage, StagePurge>;
}

function emptyJobs<T>(make: () => T): Record<Stage, T> {
  return Object.fromEntries(STAGES.map((stage) => [stage, make()])) as Record<Stage, T>;
}

/** The batch's ledger and jobs as they are now; `unknown_batch` when there is neither. */
async function planPurge(deps: PurgeDeps, batch: string): Promise<PurgePlan> {
  try {
    checkName("batch", batch);
  } catch (error) {
    if (error instanceof LedgerError) throw new OpsError("invalid_argument", error.message);
    throw error;
  }
  const summary = await deps.ledger.getBatch(batch);
  const jobs = emptyJobs<string[]>(() => []);
  const jobCounts = emptyJobs(() => 0);
  for (const stage of STAGES) {
    const { count, ids } = await countBatchJobs(deps.queues[stage], batch);
    jobs[stage] = ids;
    jobCounts[stage] = count;
  }
  return { batch, summary, jobs, jobCounts };
}

/**
 * A batch with no ledger and no job: the usual typo (or another KIE_QUEUE_PREFIX), refused naming
 * the batches there are; or a purge cut short after its jobs went, whose in-flight slots are
 * released now (they would hold part of KIE_MAX_IN_FLIGHT for the hour they take to go stale).
 */
async function finishCutShort(deps: PurgeDeps, batch: string): Promise<number> {
  // Only slots named by this deployment: a purge of this version cut short leaves no other, and
  // the name may be a typo of another deployment's batch (an earlier version's slots of it).
  const released = (await deps.inFlight?.releaseBatch(batch, { ownOnly: true })) ?? 0;
  if (released === 0) await requireBatch(deps.ledger, batch, deps.queuePrefix);
  deps.out.write(
    `batch ${batch} has no ledger and no jobs left (a purge cut short): ${released} in-flight slots (KIE_MAX_IN_FLIGHT) of it released\n`,
  );
  return released;
}

/**
 * `kie-batch purge`: deletes a batch's ledger (rows, counters, older versions' task mappings) and removes its jobs
 * from the three stage queues, in any state. The ledger goes first, so a job a worker picks up
 * meanwhile finds no row and does nothing; then the queues are listed again, which also catches
 * jobs that running ones added. A purge cut short can be run again: jobs without a ledger still
 * count as a batch to purge.
 */
export async function purgeBatch(deps: PurgeDeps, batch: string): Promise<PurgeReport> {
  const plan = await planPurge(deps, batch);
  const { out } = deps;
  const report: PurgeReport = {
    batch,
    confirmed: true,
    rows: 0,
    inFlightReleased: 0,
    jobs: emptyJobs(() => ({ removed: 0, byState: {}, active: [] })),
  };
  if (!plan.summary && STAGES.every((stage) => plan.jobCounts[stage] === 0))
    return { ...report, inFlightReleased: await finishCutShort(deps, batch) };
  for (const line of planLines(plan)) out.write(`${line}\n`);
  if (deps.confirm && !(await deps.confirm(plan))) {
    out.write(`purge of batch ${batch} cancelled: nothing removed\n`);
    return { ...report, confirmed: false };
  }

  const letGo = await holdPurgeLease(deps, batch);
  try {
    await purgeHeld(deps, batch, plan, report);
  } finally {
    await letGo();
  }
  for (const line of reportLines(report)) out.write(`${line}\n`);
  return report;
}

/** The purge itself, under the batch's purge lease: its ledger, its jobs, its slots, its hash. */
async function purgeHeld(
  deps: PurgeDeps,
  batch: string,
  plan: PurgePlan,
  report: PurgeReport,
): Promise<void> {
  // The batch's hash, marked `purging`, stays until its jobs and slots are gone too: an enqueue
  // meanwhile is refused rather than making a batch whose jobs and slots this purge then takes.
  if (plan.summary) report.rows = await deps.ledger.purge(batch, { keepMark: true });
  for (const stage of STAGES) {
    const queue = deps.queues[stage];
    const result = report.jobs[stage];
    // A page of the queue at a time, never every id of the batch at once.
    await forEachBatchJobPage(queue, batch, async (ids) => {
      let removed = 0;
      await forEachLimit(iterate(ids), CONCURRENCY, async (id) => {
        const state = await queue.getJobState(id);
        // 1: removed (or gone meanwhile); 0: locked by a worker.
        if ((await queue.remove(id)) === 1) {
          removed++;
          result.removed++;
          const key = state === "unknown" ? "leftover" : state;
          result.byState[key] = (result.byState[key] ?? 0) + 1;
        } else {
          result.active.push(id);
        }
      });
      return removed;
    });
    result.active.sort();
  }
  // After the jobs: a job that was running has found its row gone by now or soon, and never
  // releases its slot itself.
  if (deps.inFlight) report.inFlightReleased = await deps.inFlight.releaseBatch(batch);
  if (plan.summary) await deps.ledger.finishPurge(batch);
}

function countStates(s: BatchSummary): string {
  const states = (
    ["queued", "submitted", "generating", "archiving", "archived", "failed", "cancelled"] as const
  ).filter((state) => s[state] > 0);
  return states.map((state) => `${s[state]} ${state}`).join(", ") || "no rows";
}

function jobsLine(counts: Record<Stage, number>): string {
  const total = STAGES.reduce((n, stage) => n + counts[stage], 0);
  return `${total} jobs in the queues (${STAGES.map((stage) => `${stage} ${counts[stage]}`).join(", ")})`;
}

/** What is about to go, and a warning when the batch is still moving. */
function planLines(plan: PurgePlan): string[] {
  const { batch, summary } = plan;
  if (!summary) {
    return [
      `batch ${batch}: no ledger (already purged or expired); ${jobsLine(plan.jobCounts)} will be removed`,
    ];
  }
  const lines = [
    `batch ${batch}: ${summary.total} rows in the ledger (${countStates(summary)}), ${jobsLine(plan.jobCounts)} will be removed`,
  ];
  if (!isFinished(summary)) {
    const inFlight = summary.submitted + summary.generating + summary.archiving;
    const lost = [
      inFlight > 0
        ? `${inFlight} rows in flight (already paid for) will not be archived (an archive already running may still write its files to the store, and purge leaves files there)`
        : "",
      summary.queued > 0 ? `${summary.queued} queued rows will not be submitted` : "",
    ].filter(Boolean);
    lines.push(`warning: batch ${batch} is not finished: ${lost.join(", ")}`);
  }
  return lines;
}

function stageLine(stage: Stage, s: StagePurge): string {
  const states = Object.entries(s.byState)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([state, n]) => `${n} ${state}`)
    .join(", ");
  return `${stage} ${s.removed}${states ? ` (${states})` : ""}`;
}

/** What was removed, and the jobs that could not be. */
function reportLines(report: PurgeReport): string[] {
  const removed = STAGES.reduce((n, stage) => n + report.jobs[stage].removed, 0);
  const lines = [
    `purged batch ${report.batch}: ${report.rows} ledger rows deleted; ${removed} jobs removed: ${STAGES.map((stage) => stageLine(stage, report.jobs[stage])).join("; ")}`,
  ];
  if (report.inFlightReleased > 0) {
    lines.push(`${report.inFlightReleased} in-flight slots (KIE_MAX_IN_FLIGHT) of the batch released`);
  }
  for (const stage of STAGES) {
    const { active } = report.jobs[stage];
    if (active.length === 0) continue;
    const shown = active.slice(0, 5).join(", ") + (active.length > 5 ? ", ..." : "");
    lines.push(
      `${stage}: ${active.length} jobs left because a worker is running them (${shown}): they find their rows gone and end by themselves; \`kie-batch purge ${report.batch}\` again removes anything they leave`,
    );
  }
  return lines;
}
