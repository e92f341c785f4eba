/**
 * The crash suite's parts: one case runs a small batch on its own simulator with a spawned worker
 * that dies at a failpoint (KIE_FAILPOINTS=<point>=exit@1), starts a clean worker, waits for the
 * batch, and checks issue 9's invariants on what the ledger, the simulator and the logs show.
 * `checkInvariants` returns the violations as sentences, so a failing case says every broken
 * promise at once.
 */
import { PassThrough } from "node:stream";
import { connectProducer } from "../../src/app/index.js";
import { loadConfig } from "../../src/config/index.js";
import { systemClock } from "../../src/core/clock.js";
import type { FailpointName } from "../../src/core/failpoints.js";
import type { BatchSummary, RowRecord } from "../../src/ledger/index.js";
import { enqueue } from "../../src/producer/index.js";
import { startSimulator } from "../../src/simulator/index.js";
import type {
  SimTask,
  SimulatorHandle,
  SimulatorOptions,
  SimulatorStats,
} from "../../src/simulator/types.js";
import { type E2eDeployment, startDeployment } from "./e2e-deployment.js";
import { type CliProcess, type PrivateRedis, ProcessSet } from "./processes.js";

/** What `checkInvariants` reads. */
export interface CaseOutcome {
  rows: RowRecord[];
  summary: BatchSummary;
  stats: SimulatorStats;
  /** Every task of the simulator (in-process), to find which row a task was made for. */
  tasks: SimTask[];
  /** stderr of every worker of the case (JSON log lines). */
  logs: string[];
  /** The batch's budget in credits. */
  budget: number;
}

const FINAL = new Set(["archived", "failed", "cancelled"]);

/** Task ids named by log lines at `info` or above (pino's level 30). */
function taskIdsInLogs(logs: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const line of logs.flatMap((text) => text.split("\n"))) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; taskId?: unknown };
      if ((entry.level ?? 0) >= 30 && typeof entry.taskId === "string") ids.add(entry.taskId);
    } catch {
      // a partial line written as the process died
    }
  }
  return ids;
}

/**
 * Issue 9's invariants, as far as one finished batch shows them:
 * 1. every row final (archived, failed, cancelled);
 * 2. the simulator charged no more than the budget, and made no create the ledger cannot account
 *    for (creates <= recorded tasks + rows counted uncertain);
 * 3. every task the simulator charged is in the ledger or in a worker's log at info; a task whose
 *    create answer no worker ever saw is allowed only where its row is counted uncertain.
 * (4, a pause stops creates, has its own tests: no pause happens here.)
 */
export function checkInvariants(outcome: CaseOutcome): string[] {
  const { rows, stats, tasks, logs, budget } = outcome;
  const problems: string[] = [];
  for (const row of rows) {
    if (!FINAL.has(row.status))
      problems.push(`1: row ${row.id} ended ${row.status} (${row.error ?? "no error"})`);
  }
  if (rows.length !== outcome.summary.total)
    problems.push(`1: ${rows.length} rows of ${outcome.summary.total}`);

  if (stats.creditsCharged > budget)
    problems.push(`2: charged ${stats.creditsCharged} credits, budget ${budget}`);
  const recorded = rows.reduce((sum, r) => sum + r.taskIds.length, 0);
  const uncertain = rows.reduce((sum, r) => sum + r.uncertain, 0);
  if (stats.creates > recorded + uncertain) {
    problems.push(`2: ${stats.creates} creates > ${recorded} recorded tasks + ${uncertain} uncertain`);
  }

  const inLedger = new Set(rows.flatMap((r) => r.taskIds));
  const inLogs = taskIdsInLogs(logs);
  const byPrompt = new Map(rows.map((r) => [r.prompt, r]));
  const promptOf = new Map(tasks.map((t) => [t.taskId, String(t.params.prompt)]));
  const untracedByRow = new Map<string, string[]>();
  for (const taskId of stats.createdTaskIds) {
    if (inLedger.has(taskId)) continue;
    if (inLogs.has(taskId)) continue;
    const row = byPrompt.get(promptOf.get(taskId) ?? "");
    if (!row) {
      problems.push(`3: task ${taskId} belongs to no row`);
      continue;
    }
    // By batch and id: rows of two batches may share an id.
    const key = `${row.batch}/${row.id}`;
    untracedByRow.set(key, [...(untracedByRow.get(key) ?? []), taskId]);
  }
  for (const [rowId, ids] of untracedByRow) {
    const row = rows.find((r) => `${r.batch}/${r.id}` === rowId)!;
    // An answer never seen cannot be logged; the row's uncertain count is then its only trace.
    if (ids.length > row.uncertain) {
      problems.push(
        `3: task ${ids.join(", ")} of row ${rowId} (${ids.reduce((s, id) => s + (stats.creditsByTask[id] ?? 0), 0)} credits) is in neither the ledger nor the log, and the row counts ${row.uncertain} uncertain`,
      );
    }
  }
  return problems;
}

/** How a case ends, beyond the invariants: every row archived, or (all tasks failing) failed. */
export type Expected = "archived" | "failed";

export interface CrashCaseOptions {
  label: string;
  rows: number;
  /** Credits. */
  budget: number;
  expected: Expected;
  simulator?: SimulatorOptions;
  /** Environment of every worker of the case, over the deployment's. */
  env?: Record<string, string>;
  redis?: PrivateRedis;
}

/** One case's deployment, simulator, processes and batch; `close()` ends them all. */
export class CrashCase {
  readonly procs = new ProcessSet();
  readonly workers: CliProcess[] = [];
  /** The worker that died at a failpoint, and where. */
  crashed?: { point: FailpointName; worker: CliProcess };
  dep!: E2eDeployment;
  sim!: SimulatorHandle;
  env: Record<string, string> = {};
  readonly batch: string;

  constructor(readonly options: CrashCaseOptions) {
    this.batch = options.label;
  }

  /** Deployment, simulator and the enqueued batch. */
  async start(): Promise<this> {
    const { options } = this;
    this.dep = await startDeployment({
      label: options.label,
      report: () => this.procs.report(25),
      ...(options.redis ? { redisUrl: options.redis.url } : {}),
    });
    this.sim = await startSimulator({
      apiKey: this.dep.apiKey,
      latency: { minMs: 300, maxMs: 800 },
      recordLagMs: 100,
      rateLimit: { limit: 200, windowMs: 1_000 },
      ...options.simulator,
    });
    this.env = {
      ...this.dep.env,
      KIE_BASE_URL: this.sim.url,
      ARCHIVE_DIR: this.dep.archiveDir,
      KIE_RATE_LIMIT: "200/1s",
      KIE_POLL_INTERVAL: "200ms",
      KIE_LOCK_MS: "2000",
      // The reconciler's "every few minutes", shortened: a row a crash left without its job gets
      // it back within seconds.
      KIE_RECONCILE_EVERY: "1s",
      KIE_RECONCILE_SETTLE: "2s",
      // Invariant 3 reads the task ids the workers log at info.
      LOG_LEVEL: "info",
      ...options.env,
    };
    const manifest = await this.dep.writeManifest(this.batch, options.rows);
    // In this process, as `kie-batch enqueue` does it: one spawned process less per case.
    const config = loadConfig(this.env);
    const summary = await enqueue(
      { file: manifest, batch: this.batch, strict: true, budget: options.budget, json: true },
      {
        connect: (connectOptions) => connectProducer(config, connectOptions),
        out: new PassThrough().resume(),
        progress: new PassThrough().resume(),
        clock: systemClock,
      },
    );
    if (summary.exitCode !== 0) throw new Error(`enqueue failed: ${JSON.stringify(summary)}`);
    return this;
  }

  startWorker(name: string, env: Record<string, string> = {}): CliProcess {
    const worker = this.procs.start(name, ["worker"], { ...this.env, ...env });
    this.workers.push(worker);
    return worker;
  }

  /**
   * A worker armed to exit at `point`'s first hit: resolves once it did, rejects if it exits
   * otherwise or the point is not hit within `timeoutMs`.
   */
  async crashAt(point: FailpointName, timeoutMs = 90_000): Promise<void> {
    const worker = this.startWorker(`worker-${point}`, { KIE_FAILPOINTS: `${point}=exit@1` });
    const exit = await worker.waitForExit(timeoutMs).catch((error: Error) => {
      throw new Error(`failpoint ${point} was not hit: ${error.message}`);
    });
    if (exit.code !== 137 || !worker.stderr.includes(`failpoint ${point}: exit`)) {
      throw new Error(`the worker armed at ${point} exited ${JSON.stringify(exit)}\n${worker.tail()}`);
    }
    this.crashed = { point, worker };
  }

  /** Starts a clean worker and waits until every row is final; returns what the checks read. */
  async finish(timeoutMs = 90_000): Promise<CaseOutcome> {
    this.startWorker("worker-clean");
    const summary = await this.dep.waitFinished(this.batch, timeoutMs);
    return this.outcome(summary);
  }

  async outcome(summary?: BatchSummary): Promise<CaseOutcome> {
    return {
      rows: await this.dep.rows(this.batch),
      summary: summary ?? (await this.dep.ledger.getBatch(this.batch))!,
      stats: this.sim.stats(),
      tasks: this.sim.tasks(),
      logs: this.workers.map((w) => w.stderr),
      budget: this.options.budget,
    };
  }

  /** The invariants, and rows that did not end as the case expects (with their errors). */
  check(outcome: CaseOutcome): string[] {
    const unexpected = outcome.rows
      .filter((r) => r.status !== this.options.expected)
      .map((r) => `expected ${this.options.expected}: row ${r.id} is ${r.status} (${r.error ?? ""})`);
    return [...checkInvariants(outcome), ...this.checkKnownAtCrash(outcome), ...unexpected];
  }

  /**
   * Invariant 3 where the dying worker had the answer in hand (submit.after-create): its task id
   * was known, so "counted uncertain" is not enough: it must be in that worker's log.
   */
  private checkKnownAtCrash(outcome: CaseOutcome): string[] {
    if (this.crashed?.point !== "submit.after-create") return [];
    const inLedger = new Set(outcome.rows.flatMap((r) => r.taskIds));
    const charged = new Set(outcome.stats.createdTaskIds);
    const logged = [...taskIdsInLogs([this.crashed.worker.stderr])].filter(
      (id) => charged.has(id) && !inLedger.has(id),
    );
    return logged.length > 0
      ? []
      : ["3: the task whose answer the worker held when it died is in neither the ledger nor its log"];
  }

  /** A one-line account for the test's output. */
  describe(outcome: CaseOutcome): string {
    const uncertain = outcome.rows.reduce((sum, r) => sum + r.uncertain, 0);
    const { stats } = outcome;
    return `${this.options.label}: ${outcome.rows.length} rows, ${stats.creates} creates, ${uncertain} uncertain, ${stats.creditsCharged}/${this.options.budget} credits`;
  }

  async close(): Promise<void> {
    await this.procs.killAll();
    await this.sim?.close();
    await this.dep?.close(this.options.redis ? { privateRedis: true } : {});
  }
}
