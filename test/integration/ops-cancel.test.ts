import { randomUUID } from "node:crypto";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cancelBatch } from "../../src/commands/cancel.js";
import { retryBatch, retryRow } from "../../src/commands/retry.js";
import { accountId, accountKey, InFlight } from "../../src/fleet/index.js";
import { readBatchStatus } from "../../src/report/status.js";
import { batchLines } from "../../src/report/status-text.js";
import { bullPrefix } from "../../src/worker/jobs.js";
import { REDIS_URL } from "../helpers/redis.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

let fx: OpsFixture;
let workerRedis: Redis | undefined;
let worker: Worker | undefined;

beforeEach(() => {
  fx = opsFixture();
});
afterEach(async () => {
  await worker?.close();
  await workerRedis?.quit();
  worker = undefined;
  workerRedis = undefined;
  await fx.close();
});

/** What a worker leaves when it dies after marking its create (submit.ts), its lock lapsed. */
async function markCreateOnWire(batch: string, rowId: string) {
  const job = await fx.queues.queues.submit.getJob(`${batch}/${rowId}`);
  await job!.updateData({ batch, rowId, resubmit: 0, creating: Date.now() });
}

function deps(out = new Collector()) {
  const submitJobLocked = async (key: string) =>
    (await fx.redis.exists(fx.queues.queues.submit.toKey(`${key}:lock`))) === 1;
  return { ledger: fx.ledger, queues: fx.queues, out, queuePrefix: fx.prefix, submitJobLocked };
}

describe("cancel", () => {
  it("cancels queued rows and removes their submit jobs; submitted rows go on", async () => {
    await fx.ledger.addRows(
      "b1",
      ["q1", "q2", "q3", "s", "g", "d"].map((id) => newRow(id)),
      { budget: 100 },
    );
    for (const id of ["q1", "q2", "q3"]) await fx.queues.addSubmit({ batch: "b1", rowId: id, resubmit: 0 });
    // q3 is a resubmit waiting in line: its job is the r1 lineage.
    await moveRow(fx.ledger, "b1", "q3", "generating", { taskId: "t0" });
    await fx.ledger.transition("b1", "q3", { to: "queued", incr: { resubmits: 1 } });
    await fx.queues.queues.submit.remove("b1/q3");
    await fx.queues.addSubmit({ batch: "b1", rowId: "q3", resubmit: 1 });
    await fx.ledger.reserveBudget("b1", "q1", 8);
    await moveRow(fx.ledger, "b1", "s", "submitted");
    await moveRow(fx.ledger, "b1", "g", "generating");
    await moveRow(fx.ledger, "b1", "d", "archived");

    const out = new Collector();
    expect(await cancelBatch(deps(out), "b1")).toEqual({
      cancelled: 3,
      jobsRemoved: 3,
      jobsActive: 0,
      inFlight: 2,
      uncertain: 0,
      inFlightReleased: 0,
    });
    expect(out.text()).toContain("3 queued rows cancelled, 3 submit jobs removed");
    expect(out.text()).toContain("2 rows already submitted are still polled and archived");

    for (const id of ["q1", "q2", "q3"]) expect((await fx.ledger.getRow("b1", id))?.status).toBe("cancelled");
    // The batch is marked: its rows in flight are not resubmitted when their generation fails;
    // a retry of the batch clears the mark.
    expect((await fx.ledger.getBatch("b1"))?.cancelledAt).toBeGreaterThan(0);
    await retryBatch({ ...deps(), clock: { now: () => Date.now() } }, "b1");
    expect((await fx.ledger.getBatch("b1"))?.cancelledAt).toBeUndefined();
    for (const id of ["b1/q1", "b1/q2", "b1/q3/r1"]) {
      expect(await fx.queues.queues.submit.getJobState(id)).toBe("unknown");
    }
    expect((await fx.ledger.getRow("b1", "s"))?.status).toBe("submitted");
    expect((await fx.ledger.getRow("b1", "g"))?.status).toBe("generating");
    expect(await fx.ledger.getBatch("b1")).toMatchObject({
      queued: 0,
      cancelled: 3,
      submitted: 1,
      generating: 1,
      archived: 1,
      // q1's reservation went with its job.
      creditsReserved: 0,
    });
  });

  it("a marked job whose worker records its task while cancel looks: nothing counted uncertain (the task settles it)", async () => {
    await fx.ledger.addRows("b1", [newRow("late")], { budget: 100 });
    await fx.queues.addSubmit({ batch: "b1", rowId: "late", resubmit: 0 });
    await fx.ledger.reserveBudget("b1", "late", 8);
    await markCreateOnWire("b1", "late");
    // The lock is looked at while the worker's create answers: it records the task on the
    // (cancelled) row and its job completes (removed at once), so the removal finds nothing.
    const submitJobLocked = async (key: string) => {
      await fx.ledger.transition("b1", "late", { to: "submitted", addTaskId: "t-late" });
      await fx.queues.queues.submit.remove(key);
      return true;
    };
    const report = await cancelBatch({ ...deps(), submitJobLocked }, "b1");
    expect(report).toMatchObject({ cancelled: 1, uncertain: 0 });
    expect(await fx.ledger.getBatch("b1")).toMatchObject({ creditsReserved: 8, creditsUncertain: 0 });
    await fx.ledger.settleCredits("b1", "late", 8, "t-late");
    expect(await fx.ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 0,
      creditsSpent: 8,
      creditsUncertain: 0,
    });
  });

  it("a marked job whose worker records its task just after cancel read the row: still nothing counted uncertain (the script checks the row's tasks itself)", async () => {
    await fx.ledger.addRows("b1", [newRow("late")], { budget: 100 });
    await fx.queues.addSubmit({ batch: "b1", rowId: "late", resubmit: 0 });
    await fx.ledger.reserveBudget("b1", "late", 8);
    await markCreateOnWire("b1", "late");
    // No worker holds the lock (it lapsed); the worker's create answers right after cancel's read
    // of the row, before its count: the task is recorded on the (cancelled) row.
    const ledger = Object.create(fx.ledger) as typeof fx.ledger;
    ledger.getRowState = async (batch, rowId) => {
      const row = await fx.ledger.getRowState(batch, rowId);
      await fx.ledger.transition("b1", "late", { to: "submitted", addTaskId: "t-late" });
      return row;
    };
    await cancelBatch({ ...deps(), ledger, submitJobLocked: async () => false }, "b1");
    expect(await fx.ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 8,
      creditsUncertain: 0,
      uncertain: 0,
    });
    await fx.ledger.settleCredits("b1", "late", 8, "t-late");
    expect(await fx.ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 0,
      creditsSpent: 8,
      creditsUncertain: 0,
    });
  });

  it("a retry of one row (the dashboard's) clears the cancel mark: the row must not park with nothing to wake it", async () => {
    await fx.ledger.addRows("b2", [newRow("a"), newRow("f")]);
    await moveRow(fx.ledger, "b2", "f", "failed");
    await cancelBatch(deps(), "b2");
    expect((await fx.ledger.getBatch("b2"))?.cancelledAt).toBeGreaterThan(0);
    const status = () =>
      readBatchStatus(
        {
          ledger: fx.ledger,
          clock: { now: () => Date.now() },
          fleet: async () => ({ paused: null, archivePaused: null, accounts: [] }) as never,
        },
        "b2",
      );
    // `status` names the mark and how to lift it.
    expect(batchLines(await status()).join("\n")).toMatch(
      /cancelled at .*no row of it is resubmitted.*kie-batch retry b2/,
    );
    const out = new Collector();
    // A click on a row that is not failed (a stale page), or an error group that matches no row,
    // retries nothing and leaves the cancel as it was.
    const retrying = { ...deps(out), clock: { now: () => Date.now() } };
    expect(await retryRow(retrying, "b2", "a")).toMatchObject({ repolled: 0, requeued: 0 });
    expect(await retryBatch(retrying, "b2", () => false)).toMatchObject({ repolled: 0, requeued: 0 });
    expect((await fx.ledger.getBatch("b2"))?.cancelledAt).toBeGreaterThan(0);
    // Its sweep then finds the batch still cancelled: rows it cancels (jobless, parked or held) are said.
    const sweeping = { ...retrying, reconcile: async () => ({ requeued: 0, failed: 0, cancelled: 3 }) };
    expect(await retryBatch(sweeping, "b2", () => false)).toMatchObject({ cancelled: 3 });
    expect(out.text()).toContain(
      "batch b2: the batch is still cancelled; 3 of its queued rows with no live job behind them (waiting for budget or the submit window, or their job lost or given up on) were cancelled, as its cancel would have",
    );
    // Its task is polled again (moveRow recorded one), with the resubmit the retry grants.
    expect(await retryRow({ ...deps(out), clock: { now: () => Date.now() } }, "b2", "f")).toMatchObject({
      repolled: 1,
    });
    expect((await fx.ledger.getBatch("b2"))?.cancelledAt).toBeUndefined();
    expect(batchLines(await status()).join("\n")).not.toMatch(/cancelled at/);
  });

  it("counts the rows running submit jobs cancelled ahead of its walk (the batch's count, not the walk's)", async () => {
    await fx.ledger.addRows("b4", [newRow("a"), newRow("b"), newRow("c")]);
    const ledger = {
      ...fx.ledger,
      // A worker's job meets the mark first and cancels its row itself (reserve.lua: `cancelled`).
      markCancelled: async (batch: string, cancelled: boolean) => {
        const marked = await fx.ledger.markCancelled(batch, cancelled);
        await fx.ledger.transition(batch, "a", { from: ["queued"], to: "cancelled" });
        return marked;
      },
    };
    const out = new Collector();
    const report = await cancelBatch({ ...deps(out), ledger }, "b4");
    expect(report.cancelled).toBe(3);
    expect(out.text()).toContain("3 queued rows cancelled");
  });

  it("a row of a batch marked cancelled reserves nothing (its job cancels it); retry's clear lifts that", async () => {
    await fx.ledger.addRows("b3", [newRow("a")], { budget: 100 });
    await fx.ledger.markCancelled("b3", true);
    expect(await fx.ledger.reserveBudget("b3", "a", 8)).toBe("cancelled");
    expect(await fx.ledger.getBatch("b3")).toMatchObject({ creditsReserved: 0 });
    expect(await fx.ledger.batchMarks("b3")).toEqual({ cancelled: true, purging: false });
    await fx.ledger.markCancelled("b3", false);
    expect(await fx.ledger.reserveBudget("b3", "a", 8)).toBe("reserved");
    expect(await fx.ledger.batchMarks("b3")).toEqual({ cancelled: false, purging: false });
  });

  it("an enqueue that appends rows clears the cancel mark; one that adds nothing keeps it", async () => {
    await fx.ledger.addRows("b2", [newRow("a")]);
    await cancelBatch(deps(), "b2");
    await fx.ledger.addRows("b2", [newRow("a")]);
    expect((await fx.ledger.getBatch("b2"))?.cancelledAt).toBeGreaterThan(0);
    await fx.ledger.addRows("b2", [newRow("late")]);
    expect((await fx.ledger.getBatch("b2"))?.cancelledAt).toBeUndefined();
  });

  it("leaves a submit job a worker is running to the submit stage, and keeps its reservation", async () => {
    await fx.ledger.addRows("b1", [newRow("running")]);
    await fx.queues.addSubmit({ batch: "b1", rowId: "running", resubmit: 0 });
    await fx.ledger.reserveBudget("b1", "running", 8);
    // Its create on the wire now: the worker that holds the job counts what the create does.
    await markCreateOnWire("b1", "running");
    workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    worker = new Worker("submit", null, { connection: workerRedis, prefix: bullPrefix(fx.prefix, "submit") });
    expect((await worker.getNextJob(randomUUID()))?.id).toBe("b1/running");

    const out = new Collector();
    expect(await cancelBatch(deps(out), "b1")).toEqual({
      cancelled: 1,
      jobsRemoved: 0,
      jobsActive: 1,
      inFlight: 0,
      uncertain: 0,
      inFlightReleased: 0,
    });
    expect(out.text()).toContain("1 submit jobs were running");
    expect((await fx.ledger.getRow("b1", "running"))?.status).toBe("cancelled");
    expect(await fx.queues.queues.submit.getJobState("b1/running")).toBe("active");
    expect((await fx.ledger.getBatch("b1"))?.creditsReserved).toBe(8);
  });

  it("a removed job whose worker died with a create on the wire keeps the row's reservation as uncertain, not given back", async () => {
    await fx.ledger.addRows("b1", [newRow("wire"), newRow("idle")], { budget: 100 });
    for (const id of ["wire", "idle"]) {
      await fx.queues.addSubmit({ batch: "b1", rowId: id, resubmit: 0 });
      await fx.ledger.reserveBudget("b1", id, 8);
    }
    await markCreateOnWire("b1", "wire");

    const out = new Collector();
    expect(await cancelBatch(deps(out), "b1")).toMatchObject({ cancelled: 2, jobsRemoved: 2, uncertain: 1 });
    expect(out.text()).toContain("1 cancelled rows had a create on the wire when their worker stopped");
    expect(await fx.ledger.getRow("b1", "wire")).toMatchObject({
      status: "cancelled",
      creditsUncertain: 8,
      uncertain: 1,
    });
    expect(await fx.ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 0,
      creditsUncertain: 8,
      uncertain: 1,
    });
  });

  it("frees the in-flight slot a removed job held (its worker's lock lapsed mid-submit), but not one whose create is on the wire", async () => {
    await fx.ledger.addRows("b1", [newRow("wire"), newRow("idle"), newRow("fresh")], { budget: 100 });
    const account = accountId(`cancel-key-${fx.prefix}`);
    const inFlight = new InFlight(fx.redis, { accountId: account, deployment: fx.prefix });
    for (const id of ["wire", "idle", "fresh"])
      await fx.queues.addSubmit({ batch: "b1", rowId: id, resubmit: 0 });
    // Two workers took a slot and lost their locks; one had marked its create.
    for (const key of ["b1/wire", "b1/idle", "other/row"])
      expect(await inFlight.tryAcquire(key, 10)).toBe(true);
    await markCreateOnWire("b1", "wire");
    const out = new Collector();
    const report = await cancelBatch(
      { ...deps(out), inFlight: { release: (keys) => inFlight.releaseMany(keys) } },
      "b1",
    );
    expect(report).toMatchObject({ cancelled: 3, jobsRemoved: 3, uncertain: 1, inFlightReleased: 1 });
    expect(out.text()).toContain("1 in-flight slots (KIE_MAX_IN_FLIGHT) held by removed jobs freed");
    const held = await fx.redis.zrange(accountKey(account, "in-flight"), 0, -1);
    expect(held.sort()).toEqual([`${fx.prefix}:b1/wire`, `${fx.prefix}:other/row`]);
    await fx.redis.del(accountKey(account, "in-flight"));
  });

  it("a batch with nothing queued changes nothing; an unknown batch is refused", async () => {
    await fx.ledger.addRows("b1", [newRow("a")]);
    await moveRow(fx.ledger, "b1", "a", "archived");
    expect(await cancelBatch(deps(), "b1")).toEqual({
      cancelled: 0,
      jobsRemoved: 0,
      jobsActive: 0,
      inFlight: 0,
      uncertain: 0,
      inFlightReleased: 0,
    });
    expect(await fx.ledger.getBatch("b1")).toMatchObject({ archived: 1, cancelled: 0 });
    await expect(cancelBatch(deps(), "nope")).rejects.toMatchObject({ code: "unknown_batch", exitCode: 2 });
  });
});
