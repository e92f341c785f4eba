/**
 * The chaos run: one batch of a few hundred rows through everything a long run meets at once:
 * workers SIGKILLed and replaced at random moments, a budget that parks rows until it is raised
 * mid-run, a submit window, transient faults on every endpoint (502/503/500, slow answers, resets,
 * half of a submit's resets after its create: the lost reply), and generations that fail and are
 * resubmitted. Then the promises, on what the ledger, the simulator and the store show:
 * every row archived (a second batch, over its own tight budget, is cancelled mid-run: its rows
 * end archived or cancelled, or failed when their generation failed after the cancel); no batch charged past its budget (the tight one for the creates before it
 * was raised); every create accounted for (recorded, or counted uncertain); no reservation left
 * behind once every row ended; every archived row's images and sidecar in the store, whole; no 429.
 *
 * The kill schedule comes from a seed printed with the outcome (CHAOS_SEED=<n> replays it, as far
 * as timing allows). Cost: about a minute of two spawned workers.
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CrashCase, checkInvariants } from "../helpers/crash-suite.js";
import { seeded } from "../helpers/seeded.js";

const ROWS = 400;
const CREDITS_PER_ROW = 8;
/** Enough for about 40% of the rows: the rest park over the budget until it is raised. */
const TIGHT_BUDGET = Math.round(ROWS * CREDITS_PER_ROW * 0.4);
/** Every row, its resubmits and the creates on the wire at each kill: the raise lets all finish. */
const RAISED_BUDGET = ROWS * CREDITS_PER_ROW * 3;
const KILLS = 8;
const RAISE_AFTER_KILL = 3;
/** A second batch, over its own tight budget, cancelled mid-run: every row of it ends, and it keeps no credit reserved. */
const CANCELLED_ROWS = 100;
const CANCELLED_BUDGET = CANCELLED_ROWS * CREDITS_PER_ROW * 0.3;
const CANCEL_AFTER_KILL = 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let chaos: CrashCase | undefined;
afterAll(async () => {
  await chaos?.close();
});

describe("chaos: kills, a tight budget raised mid-run, faults and failed generations at once", () => {
  it("every row archived, nothing charged past the budget, every create accounted for, nothing left reserved", {
    timeout: 420_000,
  }, async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
    const random = seeded(seed);
    const c = new CrashCase({
      label: "chaos",
      rows: ROWS,
      budget: RAISED_BUDGET,
      expected: "archived",
      simulator: {
        latency: { minMs: 300, maxMs: 800 },
        faultRate: 0.04,
        failureRate: 0.03,
        randomSeed: seed,
      },
      env: {
        // A window smaller than the batch: rows are fed as it moves, through every kill.
        KIE_SUBMIT_WINDOW: "60",
        KIE_MAX_RESUBMITS: "6",
      },
    });
    chaos = c;
    await c.start();
    // The tight budget is set after the enqueue (the case enqueues with the raised one), as an
    // operator does: from here on, creates must fit it until it is raised.
    const tight = await c.procs.run(["budget", c.batch, String(TIGHT_BUDGET)], c.env);
    expect(tight.code, tight.stderr).toBe(0);
    const other = "chaos-cancelled";
    const otherFile = await c.dep.writeManifest(other, CANCELLED_ROWS);
    const enqueued = await c.procs.run(
      ["enqueue", otherFile, "--batch", other, "--budget", String(CANCELLED_BUDGET)],
      c.env,
    );
    expect(enqueued.code, enqueued.stderr).toBe(0);

    const live = [c.startWorker("worker-a"), c.startWorker("worker-b")];
    let raisedAt = 0;
    let parkedSeen = 0;
    let endedAtLastKill = 0;
    for (let kill = 1; kill <= KILLS; kill++) {
      await sleep(1_000 + random() * 2_000);
      const at = Math.floor(random() * live.length);
      live[at]!.kill("SIGKILL");
      await live[at]!.waitForExit(10_000);
      await sleep(random() * 500);
      live[at] = c.startWorker(`worker-${kill}`);
      const now = (await c.dep.ledger.getBatch(c.batch))!;
      endedAtLastKill = now.archived + now.failed + now.cancelled;
      if (kill === CANCEL_AFTER_KILL) {
        const cancelled = await c.procs.run(["cancel", other], c.env);
        expect(cancelled.code, cancelled.stderr).toBe(0);
      }
      if (kill === RAISE_AFTER_KILL) {
        const before = (await c.dep.ledger.getBatch(c.batch))!;
        parkedSeen = before.waitingBudget;
        raisedAt = Date.now();
        const raise = await c.procs.run(["budget", c.batch, String(RAISED_BUDGET)], c.env);
        expect(raise.code, raise.stderr).toBe(0);
      }
    }

    const summary = await c.dep.waitFinished(c.batch, 300_000);
    const otherSummary = await c.dep.waitFinished(other, 60_000);
    const outcome = await c.outcome(summary);
    const otherRows = await c.dep.rows(other);
    // Both batches' tasks are the simulator's: the invariants over every row of both (the
    // cancelled batch's rows end archived or cancelled), each row's expected end below.
    const counted = (b: typeof summary) => b.creditsSpent + b.creditsUncertain;
    const problems = checkInvariants({
      ...outcome,
      rows: [...outcome.rows, ...otherRows],
      summary: { ...summary, total: summary.total + otherSummary.total },
      budget: RAISED_BUDGET + CANCELLED_BUDGET,
    });
    // CHAOS_LOG_DIR=<dir>: every worker's whole log kept there when a promise broke.
    if (problems.length > 0 && process.env.CHAOS_LOG_DIR) {
      await mkdir(process.env.CHAOS_LOG_DIR, { recursive: true });
      for (const worker of c.workers)
        await writeFile(join(process.env.CHAOS_LOG_DIR, `${worker.name}.log`), worker.stderr);
      await writeFile(
        join(process.env.CHAOS_LOG_DIR, "tasks.json"),
        JSON.stringify({ tasks: outcome.tasks, rows: [...outcome.rows, ...otherRows] }, null, 1),
      );
    }
    for (const row of outcome.rows)
      if (row.status !== "archived") problems.push(`row ${row.id} ended ${row.status} (${row.error ?? ""})`);
    // A row of the cancelled batch whose generation failed after the cancel fails (no resubmit).
    const failedAfterCancel = (row: (typeof otherRows)[number]) =>
      row.status === "failed" && /not resubmitted: the batch was cancelled/.test(row.error ?? "");
    for (const row of otherRows)
      if (row.status !== "archived" && row.status !== "cancelled" && !failedAfterCancel(row))
        problems.push(`row ${other}/${row.id} ended ${row.status} (${row.error ?? ""})`);
    const { stats, tasks } = outcome;
    console.log(
      `chaos seed ${seed}: ${c.describe(outcome)}; ${stats.rateLimited} x 429; faults ${JSON.stringify(stats.faults)}; ` +
        `${summary.resubmits} resubmits; ${parkedSeen} rows waiting for budget at the raise; ${summary.repaired ?? 0} repaired; ${endedAtLastKill} ended at the last kill; ${other}: ${otherSummary.cancelled} cancelled, ${otherSummary.archived} archived, ${otherSummary.creditsSpent} spent, ${otherSummary.creditsReserved} reserved at its end`,
    );
    expect(problems, `seed ${seed}: ${problems.join("; ")}\n${c.procs.report(10)}`).toEqual([]);
    // Every kill hit a batch in motion.
    expect(endedAtLastKill, "rows ended at the last kill").toBeLessThan(ROWS);

    // The budget was exercised: rows waited over it, and the creates made before it was raised
    // (their charges, as KIE counts them) fit the tight one.
    expect(parkedSeen, "rows parked over the tight budget").toBeGreaterThan(0);
    const chargedBeforeRaise = tasks
      .filter((t) => t.createdAt < raisedAt && String(t.params.prompt).startsWith(`${c.batch}: `))
      .reduce((sum, t) => sum + t.credits, 0);
    expect(chargedBeforeRaise, `seed ${seed}`).toBeLessThanOrEqual(TIGHT_BUDGET);

    // The ledger's money: nothing left reserved once every row ended, and every credit KIE
    // charged counted as spent or uncertain.
    expect(summary.creditsReserved, `seed ${seed}: ${JSON.stringify(summary)}`).toBe(0);
    // The cancelled batch: charged within its budget, and nothing left reserved once the
    // reconciler (every second here) has given back what a killed mover could not.
    expect(otherSummary.cancelled, "rows cancelled").toBeGreaterThan(0);
    expect(counted(otherSummary)).toBeLessThanOrEqual(CANCELLED_BUDGET);
    await c.dep.waitFor(
      `no credit left reserved in ${other}`,
      async () => ((await c.dep.ledger.getBatch(other))!.creditsReserved === 0 ? true : undefined),
      30_000,
    );
    expect(counted(summary) + counted(otherSummary)).toBeGreaterThanOrEqual(stats.creditsCharged);
    expect(counted(summary)).toBeLessThanOrEqual(RAISED_BUDGET);

    // The rate limit (the simulator's window is the workers' KIE_RATE_LIMIT) was never exceeded.
    expect(stats.rateLimited, `seed ${seed}`).toBe(0);

    // Every archived row's sidecar and images in the store, whole.
    for (const row of outcome.rows) {
      const sidecar = JSON.parse(
        await readFile(join(c.dep.archiveDir, c.batch, `${row.id}.json`), "utf8"),
      ) as {
        taskId: string;
        images: { key: string; bytes: number }[];
      };
      expect(sidecar.taskId, `row ${row.id}`).toBe(row.taskId);
      expect(sidecar.images.length, `row ${row.id}`).toBeGreaterThan(0);
      for (const image of sidecar.images) {
        expect((await stat(join(c.dep.archiveDir, image.key))).size, `${image.key}`).toBe(image.bytes);
      }
    }
  });
});
