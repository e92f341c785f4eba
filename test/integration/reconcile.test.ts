import { beforeEach, describe, expect, it } from "vitest";
import { startReconciler } from "../../src/app/reconciler.js";
import { retryBatch } from "../../src/commands/retry.js";
import { silentLogger } from "../../src/core/logger.js";
import type { TaskRecord } from "../../src/kie/types.js";
import { ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { readBatchStatus } from "../../src/report/status.js";
import { batchLines } from "../../src/report/status-text.js";
import { jobKey, type Stage } from "../../src/worker/jobs.js";
import { type PollDeps, pollStage } from "../../src/worker/poll.js";
import { type ReconcileDeps, type ReconcileReport, reconcileBatch } from "../../src/worker/reconcile.js";
import { ledgerQueuesContext } from "../helpers/ledger-context.js";
import { reconcileDeps } from "../helpers/reconcile-deps.js";
import { stageJob } from "../helpers/stage-fakes.js";
import { newRow as opsRow } from "./ops-helpers.js";

const MINUTE = 60_000;
/** One id, the ops tests' row (for `ids.map`). */
const newRow = (id: string): NewRow => opsRow(id);

/** One clock for the ledger's scripts and the reconciler: "entered its state a minute ago" is exact. */
let now: number;
const clock = { now: () => now };
const ctx = ledgerQueuesContext({ clock });
beforeEach(() => {
  now = Date.now();
});

const deps = (): ReconcileDeps => reconcileDeps(ctx, clock, 2);

async function jobIds(stage: Stage): Promise<string[]> {
  const jobs = await ctx.queues.queues[stage].getJobs(["wait", "delayed", "prioritized", "active", "failed"]);
  return jobs.map((job) => job.id!).sort();
}

/** Moves a row as the stages do, without adding the job the next state needs (a crash right there). */
async function moveTo(rowId: string, path: readonly ("submitted" | "generating" | "archiving" | "queued")[]) {
  for (const to of path) {
    const taskId =
      to === "submitted"
        ? `task-${rowId}-${(await ctx.ledger.getRow("b", rowId))!.taskIds.length}`
        : undefined;
    await ctx.ledger.transition("b", rowId, {
      to,
      ...(taskId ? { addTaskId: taskId, set: { submittedAt: now } } : {}),
      ...(to === "archiving" ? { set: { completedAt: now } } : {}),
    });
  }
}

describe("the reconciler", () => {
  it("gives each row whose state has no job behind it that job back, once, and counts it on the batch", async () => {
    await ctx.ledger.addRows("b", ["q", "s", "g", "a", "resub", "fine"].map(newRow));
    await moveTo("s", ["submitted"]);
    await moveTo("g", ["submitted", "generating"]);
    // Died after the poll moved the row to archiving, before the archive job was added.
    await moveTo("a", ["submitted", "generating", "archiving"]);
    // Died after a failed generation was moved back to queued, before its submit job was added.
    await moveTo("resub", ["submitted", "generating", "queued"]);
    await ctx.queues.addSubmit({ batch: "b", rowId: "fine", resubmit: 0 });
    now += 2 * MINUTE;

    const report = await reconcileBatch(deps(), "b");
    expect(report).toEqual<ReconcileReport>({ batch: "b", checked: 6, requeued: 5, failed: 0 });
    expect(await jobIds("submit")).toEqual(["b/fine", "b/q", "b/resub/r1"]);
    // The archiving row gets a poll of its task, which adds the archive job with fresh URLs.
    expect(await jobIds("poll")).toEqual(["b/a", "b/g", "b/s"]);
    const poll = await ctx.queues.queues.poll.getJob("b/g");
    expect(poll!.data).toMatchObject({
      batch: "b",
      rowId: "g",
      taskId: "task-g-0",
      resubmit: 0,
      submittedAt: now - 2 * MINUTE,
    });
    expect((await ctx.ledger.getBatch("b"))!.repaired).toBe(5);

    // Idempotent: a second sweep finds every job in place.
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ requeued: 0, failed: 0 });
    expect((await ctx.ledger.getBatch("b"))!.repaired).toBe(5);
  });

  it("leaves a batch `purge` marked unswept: its queued rows' jobs would end at once (a cut-short purge's million, each sweep)", async () => {
    await ctx.ledger.addRows("b", ["q1", "q2"].map(newRow));
    await ctx.redis.hset(ledgerKeys(ctx.prefix).batch("b"), "purging", now);
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toEqual<ReconcileReport>({
      batch: "b",
      checked: 0,
      requeued: 0,
      failed: 0,
    });
    expect(await jobIds("submit")).toEqual([]);
  });

  it("leaves alone a row that entered its state under a minute ago: its job may be on its way", async () => {
    await ctx.ledger.addRows("b", ["young", "old"].map(newRow));
    now += 2 * MINUTE;
    await moveTo("young", ["submitted"]);
    await moveTo("old", ["submitted"]);
    now += 30_000;
    await ctx.ledger.transition("b", "old", { to: "failed" });
    await ctx.ledger.transition("b", "old", { from: ["failed"], to: "queued" });
    now += 1;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ checked: 0, requeued: 0 });
    expect(await jobIds("poll")).toEqual([]);
    expect(await jobIds("submit")).toEqual([]);
  });

  it("fails a row whose job BullMQ gave up on when the runner could not record it", async () => {
    await ctx.ledger.addRows("b", ["r"].map(newRow));
    await ctx.queues.addSubmit({ batch: "b", rowId: "r", resubmit: 0 });
    // What the queue holds after a final failure whose ledger write was lost: the job, in `failed`.
    await ctx.redis.lrem(ctx.queues.queues.submit.toKey("wait"), 0, "b/r");
    await ctx.redis.zadd(ctx.queues.queues.submit.toKey("failed"), now, "b/r");
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ requeued: 0, failed: 1 });
    const row = await ctx.ledger.getRow("b", "r");
    expect(row!.status).toBe("failed");
    expect(row!.error).toMatch(/submit stage gave up/);
  });

  it("a submit job given up on gives its reservation back, or keeps it uncertain with a create on the wire", async () => {
    await ctx.ledger.addRows("b", ["clean", "wire"].map(newRow), { budget: 100 });
    for (const rowId of ["clean", "wire"]) {
      expect(await ctx.ledger.reserveBudget("b", rowId, 8)).toBe("reserved");
      await ctx.queues.addSubmit({ batch: "b", rowId, resubmit: 0 });
      if (rowId === "wire")
        await ctx.queues.queues.submit
          .getJob(`b/${rowId}`)
          .then((j) => j!.updateData({ batch: "b", rowId, resubmit: 0, creating: now }));
      await ctx.redis.lrem(ctx.queues.queues.submit.toKey("wait"), 0, `b/${rowId}`);
      await ctx.redis.zadd(ctx.queues.queues.submit.toKey("failed"), now, `b/${rowId}`);
    }
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ failed: 2 });
    expect(await ctx.ledger.getRow("b", "clean")).toMatchObject({
      status: "failed",
      creditsReserved: 0,
      creditsUncertain: 0,
    });
    expect(await ctx.ledger.getRow("b", "wire")).toMatchObject({
      status: "failed",
      creditsReserved: 0,
      creditsUncertain: 8,
    });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ creditsReserved: 0, creditsUncertain: 8 });
  });

  it("walks only the states that hold rows, never an archived or failed row", async () => {
    await ctx.ledger.addRows("b", ["x", "y"].map(newRow));
    await ctx.ledger.transition("b", "x", { to: "archived" });
    await ctx.ledger.transition("b", "y", { to: "failed" });
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toEqual({ batch: "b", checked: 0, requeued: 0, failed: 0 });
  });

  it("runs in a worker on its period, by lease, and repairs what it finds", async () => {
    await ctx.ledger.addRows("b", ["lost"].map(newRow));
    now += 2 * MINUTE;
    let resolveSwept!: (reports: ReconcileReport[]) => void;
    const swept = new Promise<ReconcileReport[]>((resolve) => (resolveSwept = resolve));
    const reconciler = startReconciler({
      redis: ctx.redis,
      ledger: ctx.ledger,
      queues: ctx.queues,
      clock,
      log: silentLogger(),
      everyMs: 10 * MINUTE,
      onSweep: resolveSwept,
    });
    try {
      expect(await swept).toEqual([{ batch: "b", checked: 1, requeued: 1, failed: 0 }]);
      expect(await jobIds("submit")).toEqual(["b/lost"]);
      // The lease is held for the period: another worker's sweep now would skip.
      expect(await ctx.ledger.claimLease("reconcile", "another-worker", MINUTE)).toBe(false);
    } finally {
      await reconciler.close();
    }
  });

  it("a reconciler that closes lets the lease go: another worker sweeps at its next tick", async () => {
    await ctx.ledger.addRows("b", ["lost"].map(newRow));
    now += 2 * MINUTE;
    const sweeps = { first: 0, second: 0 };
    const start = (name: keyof typeof sweeps, everyMs: number) =>
      startReconciler({
        redis: ctx.redis,
        ledger: ctx.ledger,
        queues: ctx.queues,
        clock,
        log: silentLogger(),
        everyMs,
        onSweep: () => void sweeps[name]++,
      });
    const until = async (done: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !done() && Date.now() < end; )
        await new Promise((resolve) => setTimeout(resolve, 20));
      return done();
    };
    // The first holds the lease for its long period (KIE_RECONCILE_EVERY=10m).
    const first = start("first", 10 * MINUTE);
    const second = { reconciler: undefined as ReturnType<typeof startReconciler> | undefined };
    try {
      expect(await until(() => sweeps.first === 1, 5_000)).toBe(true);
      // The second ticks every 200 ms and skips while the first holds the lease.
      second.reconciler = start("second", 200);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(sweeps.second).toBe(0);
      await first.close();
      // Its next tick after the close finds the lease free (not in 10 minutes, when it lapses).
      expect(await until(() => sweeps.second > 0, 1_000)).toBe(true);
      expect(await ctx.ledger.claimLease("reconcile", "another-worker", MINUTE)).toBe(false);
    } finally {
      await first.close();
      await second.reconciler?.close();
    }
    // The second let it go as well; a lease another holder took is never released by a closer.
    expect(await ctx.ledger.claimLease("reconcile", "another-worker", MINUTE)).toBe(true);
    expect(await ctx.ledger.releaseLease("reconcile", "not-the-holder")).toBe(false);
    expect(await ctx.ledger.claimLease("reconcile", "yet-another", MINUTE)).toBe(false);
    expect(await ctx.ledger.releaseLease("reconcile", "another-worker")).toBe(true);
  });
});

describe("retry and status", () => {
  it("`retry` sweeps its batch, and `status` (text and JSON) shows how many rows were repaired", async () => {
    await ctx.ledger.addRows("b", ["stuck"].map(newRow));
    await moveTo("stuck", ["submitted", "generating", "queued"]);
    now += 2 * MINUTE;
    const written: string[] = [];
    const out = { write: (text: string) => written.push(text) } as unknown as NodeJS.WritableStream;
    const report = await retryBatch(
      {
        ledger: ctx.ledger,
        queues: ctx.queues,
        clock,
        out,
        reconcile: (batch) => reconcileBatch(deps(), batch),
      },
      "b",
    );
    expect(report).toEqual({ repolled: 0, requeued: 0, skipped: 0, repaired: 1 });
    expect(written.join("")).toMatch(/1 rows had no job behind their state/);
    expect(await jobIds("submit")).toEqual(["b/stuck/r1"]);

    const status = await readBatchStatus(
      {
        ledger: ctx.ledger,
        clock,
        fleet: async () => ({ paused: null, archivePaused: null, accounts: [] }) as never,
      },
      "b",
    );
    expect(status.repaired).toBe(1);
    expect(batchLines(status).join("\n")).toMatch(/repaired by the reconciler: 1 rows/);
  });
});

describe("a poll job rerun that finds its row already archiving", () => {
  it("adds the archive job (the worker before it died between the move and the add)", async () => {
    await ctx.ledger.addRows("b", ["a"].map(newRow));
    await moveTo("a", ["submitted", "generating", "archiving"]);
    const statusCalls: string[] = [];
    const pollDeps = pollDepsWith(async (taskId) => {
      statusCalls.push(taskId);
      return { taskId, status: "success", imageUrls: ["https://files.example/a.png"], completedAt: now };
    });
    const job = stageJob({
      batch: "b",
      rowId: "a",
      taskId: "task-a-0",
      resubmit: 0,
      submittedAt: now,
      checks: 3,
    });
    expect(await pollStage.run(job, pollDeps as never)).toEqual({ kind: "done" });
    expect(statusCalls).toEqual(["task-a-0"]);
    const archive = await ctx.queues.queues.archive.getJob(jobKey("b", "a"));
    expect(archive?.data).toMatchObject({
      batch: "b",
      rowId: "a",
      taskId: "task-a-0",
      imageUrls: ["https://files.example/a.png"],
    });
    // The row itself is untouched: still archiving, its archive job now behind it.
    expect((await ctx.ledger.getRow("b", "a"))!.status).toBe("archiving");
  });
  it("a row whose task record a failover lost is not submitted again while its poll job lives: the poll records the task again", async () => {
    await ctx.ledger.addRows("b", ["lost"].map(newRow));
    // As after the failover: the row queued again without its task, the poll job holding it.
    const held = {
      batch: "b",
      rowId: "lost",
      taskId: "task-lost-0",
      resubmit: 0,
      submittedAt: now,
      checks: 1,
    };
    await ctx.queues.addPoll({ ...held, taskKey: "k1" }, 5 * MINUTE);
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ checked: 1, requeued: 0 });
    expect(await jobIds("submit")).toEqual([]);

    const pollDeps = pollDepsWith(async (taskId) => ({ taskId, status: "generating", imageUrls: [] }));
    const job = (await ctx.queues.queues.poll.getJob(jobKey("b", "lost", 0)))!;
    expect(await pollStage.run(stageJob(job.data), pollDeps)).toMatchObject({ kind: "delay" });
    expect(await ctx.ledger.getRow("b", "lost")).toMatchObject({
      status: "generating",
      taskIds: ["task-lost-0"],
      taskKeys: { "task-lost-0": "k1" },
    });
    // One task for the row: nothing left for a sweep to submit.
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ requeued: 0 });
    expect(await jobIds("submit")).toEqual([]);
  });
});

describe("a resubmit racing a cancel", () => {
  it("is refused by the ledger; the reconciler's poll then fails the row with the reason, the task settled once", async () => {
    await ctx.ledger.addRows("b", ["r"].map(newRow));
    await ctx.ledger.transition("b", "r", { to: "generating", addTaskId: "task-r-0" });
    await ctx.ledger.markCancelled("b", true);
    const failed = async (taskId: string): Promise<TaskRecord> => ({
      taskId,
      status: "failed",
      imageUrls: [],
      failCode: "500",
      failMessage: "boom",
    });
    // The poll read the batch just before the cancel marked it.
    const before = pollDepsWith(failed);
    const racing = { ...before, ledger: { ...ctx.ledger, getBatch: async () => undefined } } as PollDeps;
    const data = { batch: "b", rowId: "r", taskId: "task-r-0", resubmit: 0, submittedAt: now, checks: 0 };
    expect(await pollStage.run(stageJob(data), racing)).toEqual({ kind: "done" });
    expect(await ctx.ledger.getRow("b", "r")).toMatchObject({ status: "generating", creditsSpent: 8 });
    expect(await jobIds("submit")).toEqual([]);
    // The next sweep gives the row its poll back; that poll reads the mark and fails the row.
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ requeued: 1 });
    const job = (await ctx.queues.queues.poll.getJob(jobKey("b", "r", 0)))!;
    expect(await pollStage.run(stageJob(job.data), pollDepsWith(failed))).toEqual({ kind: "done" });
    const row = await ctx.ledger.getRow("b", "r");
    expect(row).toMatchObject({ status: "failed", creditsSpent: 8, resubmits: 0 });
    expect(row?.error).toMatch(/not resubmitted: the batch was cancelled/);
    expect(await jobIds("submit")).toEqual([]);
  });
});

/** The poll stage's deps over this file's ledger and queues, with KIE answering `getTask`. */
function pollDepsWith(getTask: (taskId: string) => Promise<TaskRecord>): PollDeps {
  return {
    kie: { getTask },
    ledger: ctx.ledger,
    fleet: {
      pollSlot: async () => {},
      pause: async () => true,
      touchInFlight: async () => {},
      releaseInFlight: async () => {},
    },
    queues: ctx.queues,
    clock,
    settings: {
      pollFirstMs: 5_000,
      recordLagGraceMs: 60_000,
      maxWaitMs: 30 * MINUTE,
      maxResubmits: 1,
      fileLifetimeMs: 14 * 24 * 3_600_000,
    },
  } as PollDeps;
}
