import { randomUUID } from "node:crypto";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { retryBatch } from "../../src/commands/retry.js";
import { silentLogger } from "../../src/core/logger.js";
import { retryInScope } from "../../src/dashboard/batch-routes.js";
import type { KieApi } from "../../src/kie/types.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { bullPrefix, type PollJob, type Stage, type SubmitJob } from "../../src/worker/jobs.js";
import { runPoll } from "../../src/worker/poll.js";
import type { FleetPort, StageDeps } from "../../src/worker/ports.js";
import { REDIS_URL } from "../helpers/redis.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

const NOW = Date.UTC(2025, 5, 1, 12);
const clock = { now: () => NOW };

let fx: OpsFixture;
let workers: Worker[];
let workerRedis: Redis;

beforeEach(() => {
  fx = opsFixture();
  workers = [];
  // BullMQ workers need a connection that waits through reconnects.
  workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
});
afterEach(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await workerRedis.quit();
  await fx.close();
});

function deps(out = new Collector()) {
  return { ledger: fx.ledger, queues: fx.queues, clock, out, queuePrefix: fx.prefix };
}

/** A manual BullMQ worker on one stage: takes jobs by hand, so a test can fail or hold one. */
function manualWorker(stage: Stage): { worker: Worker; token: string } {
  const worker = new Worker(stage, null, { connection: workerRedis, prefix: bullPrefix(fx.prefix, stage) });
  workers.push(worker);
  return { worker, token: randomUUID() };
}

/** Leaves a failed job under `id`, as BullMQ keeps one for a week after its last attempt. */
async function failedJob(stage: Stage, id: string, data: object): Promise<void> {
  await fx.queues.queues[stage].add(stage, data, { jobId: id, attempts: 1, removeOnFail: false });
  const { worker, token } = manualWorker(stage);
  const job = await worker.getNextJob(token);
  expect(job?.id).toBe(id);
  await job!.moveToFailed(new Error("old failure"), token, false);
  expect(await fx.queues.queues[stage].getJobState(id)).toBe("failed");
}

describe("retry", () => {
  it("re-polls a failed row that has a task, requeues one that failed at submit, and never touches archived rows", async () => {
    await fx.ledger.addRows("b1", [newRow("polled"), newRow("requeued"), newRow("done"), newRow("busy")]);
    await moveRow(fx.ledger, "b1", "polled", "failed", { error: "still generating after 30 min" });
    await moveRow(fx.ledger, "b1", "requeued", "failed", {
      taskId: null,
      error: "submit failed after 8 attempts",
    });
    const done = await moveRow(fx.ledger, "b1", "done", "archived", { spent: 8 });
    await moveRow(fx.ledger, "b1", "busy", "generating");

    const out = new Collector();
    expect(await retryBatch(deps(out), "b1")).toEqual({ repolled: 1, requeued: 1, skipped: 0 });
    expect(out.text()).toContain("1 failed rows re-polled");
    expect(out.text()).toContain("1 failed rows requeued");

    const polled = await fx.ledger.getRow("b1", "polled");
    expect(polled).toMatchObject({ status: "submitted", submittedAt: NOW, taskIds: ["task-polled"] });
    expect(polled?.error).toBeUndefined();
    const pollJob = await fx.queues.queues.poll.getJob("b1/polled");
    expect(pollJob?.data).toEqual({
      batch: "b1",
      rowId: "polled",
      taskId: "task-polled",
      resubmit: 0,
      submittedAt: NOW,
      checks: 0,
      resubmitOnFailure: true,
    });
    expect(await pollJob?.getState()).toBe("waiting");

    const requeued = await fx.ledger.getRow("b1", "requeued");
    expect(requeued?.status).toBe("queued");
    expect(requeued?.error).toBeUndefined();
    const submitJob = await fx.queues.queues.submit.getJob("b1/requeued");
    // A submit job's batch, row and resubmit are its id; its data holds only a `creating` mark.
    expect(submitJob?.id).toBe("b1/requeued");
    expect(submitJob?.data).toEqual({});

    expect(await fx.ledger.getRow("b1", "done")).toEqual(done);
    for (const stage of ["submit", "poll", "archive"] as const) {
      expect(await fx.queues.queues[stage].getJob("b1/done")).toBeUndefined();
      expect(await fx.queues.queues[stage].getJob("b1/busy")).toBeUndefined();
    }
    expect(await fx.ledger.getBatch("b1")).toMatchObject({
      total: 4,
      queued: 1,
      submitted: 1,
      generating: 1,
      archived: 1,
      failed: 0,
    });
  });

  it("requeues a row at its batch's priority, as its first job had (a job without one runs before every other)", async () => {
    await fx.ledger.addRows("b1", [newRow("requeued")]);
    await fx.redis.hset(ledgerKeys(fx.prefix).batch("b1"), "priority", 100);
    await moveRow(fx.ledger, "b1", "requeued", "failed", { taskId: null, error: "submit failed" });
    expect(await retryBatch(deps(), "b1")).toMatchObject({ requeued: 1 });
    expect((await fx.queues.queues.submit.getJob("b1/requeued"))?.opts.priority).toBe(100);
  });

  it("replaces an old failed job of the same id instead of getting it back, on the latest task's lineage", async () => {
    await fx.ledger.addRows("b1", [newRow("x"), newRow("y")]);
    // x: first task failed, resubmitted once (task t1), which failed too.
    await moveRow(fx.ledger, "b1", "x", "generating", { taskId: "t0" });
    await fx.ledger.transition("b1", "x", { to: "queued", incr: { resubmits: 1 } });
    await fx.ledger.transition("b1", "x", { to: "submitted", addTaskId: "t1" });
    await fx.ledger.transition("b1", "x", { to: "failed", set: { error: "generation failed" } });
    await failedJob("poll", "b1/x/r1", {
      batch: "b1",
      rowId: "x",
      taskId: "t1",
      resubmit: 1,
      submittedAt: 1,
      checks: 9,
    });
    await failedJob("archive", "b1/x", { batch: "b1", rowId: "x" });
    await failedJob("submit", "b1/x/r2", { batch: "b1", rowId: "x", resubmit: 2 });
    // y: failed at submit, its job kept as failed.
    await moveRow(fx.ledger, "b1", "y", "failed", { taskId: null });
    await failedJob("submit", "b1/y", { batch: "b1", rowId: "y", resubmit: 0 });

    expect(await retryBatch(deps(), "b1")).toEqual({ repolled: 1, requeued: 1, skipped: 0 });

    const poll = await fx.queues.queues.poll.getJob("b1/x/r1");
    expect(await poll?.getState()).toBe("waiting");
    expect(poll?.data).toMatchObject({
      taskId: "t1",
      resubmit: 1,
      submittedAt: NOW,
      checks: 0,
      resubmitOnFailure: true,
    });
    // The stale jobs a re-poll could run into later are gone.
    expect(await fx.queues.queues.archive.getJobState("b1/x")).toBe("unknown");
    expect(await fx.queues.queues.submit.getJobState("b1/x/r2")).toBe("unknown");

    const submit = await fx.queues.queues.submit.getJob("b1/y");
    expect(await submit?.getState()).toBe("waiting");
    expect(submit?.failedReason).toBeFalsy();
  });

  it("skips a row whose job a worker still holds, and reopens a finished batch", async () => {
    await fx.ledger.addRows("b1", [newRow("held"), newRow("free")]);
    await moveRow(fx.ledger, "b1", "held", "failed");
    await moveRow(fx.ledger, "b1", "free", "failed");
    expect((await fx.ledger.getBatch("b1"))?.finishedAt).toBeDefined();
    await fx.queues.queues.poll.add("poll", { batch: "b1", rowId: "held" }, { jobId: "b1/held" });
    const { worker, token } = manualWorker("poll");
    expect((await worker.getNextJob(token))?.id).toBe("b1/held");

    const out = new Collector();
    expect(await retryBatch(deps(out), "b1")).toEqual({ repolled: 1, requeued: 0, skipped: 1 });
    expect(out.text()).toContain("1 rows skipped");
    expect((await fx.ledger.getRow("b1", "held"))?.status).toBe("failed");
    const batch = await fx.ledger.getBatch("b1");
    expect(batch).toMatchObject({ failed: 1, submitted: 1 });
    expect(batch?.finishedAt).toBeUndefined();
  });

  it("says so when there is nothing to retry, and refuses an unknown batch", async () => {
    await fx.ledger.addRows("b1", [newRow("a")]);
    const out = new Collector();
    expect(await retryBatch(deps(out), "b1")).toEqual({ repolled: 0, requeued: 0, skipped: 0 });
    expect(out.text()).toContain("no failed rows");
    await expect(retryBatch(deps(), "b2")).rejects.toMatchObject({ code: "unknown_batch" });
  });
});

describe("retry of one row (the dashboard's button)", () => {
  it("reads that row only: no walk of the failed rows, no other row touched", async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `r${i}`);
    await fx.ledger.addRows(
      "b1",
      ids.map((id) => newRow(id)),
    );
    for (const id of ids) await moveRow(fx.ledger, "b1", id, "failed", { error: "bad luck" });
    const calls: string[] = [];
    const ledger = new Proxy(fx.ledger, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(String(name));
          return value.apply(target, args);
        };
      },
    });
    const report = await retryInScope({ ...deps(), ledger }, "b1", { rowId: "r7" });
    expect(report).toEqual({ repolled: 1, requeued: 0, skipped: 0 });
    expect(calls.filter((name) => name === "getRow")).toHaveLength(1);
    expect(calls.filter((name) => /rows|State|statePages/.test(name))).toEqual([]);
    expect((await fx.ledger.getRow("b1", "r7"))?.status).toBe("submitted");
    expect(await fx.ledger.getBatch("b1")).toMatchObject({ failed: 39, submitted: 1 });
    // A row that is not failed is left as it is.
    expect(await retryInScope(deps(), "b1", { rowId: "r7" })).toEqual({
      repolled: 0,
      requeued: 0,
      skipped: 0,
    });
    expect(await retryInScope(deps(), "b1", { rowId: "nope" })).toEqual({
      repolled: 0,
      requeued: 0,
      skipped: 0,
    });
  });

  it("a second retry of a row already being retried never removes the job the first one added", async () => {
    await fx.ledger.addRows("b1", [newRow("polled"), newRow("requeued")]);
    for (const [id, scope] of [
      ["polled", { error: "bad luck" }],
      ["polled", {}],
      ["requeued", { error: "submit failed" }],
    ] as const) {
      const stage = id === "polled" ? "poll" : "submit";
      await moveRow(fx.ledger, "b1", id, "failed", {
        error: id === "polled" ? "bad luck" : "submit failed",
        ...(id === "requeued" ? { taskId: null } : {}),
      });
      if (id === "polled") await failedJob("poll", "b1/polled", { batch: "b1", rowId: "polled" });
      // The later click (a group, or the whole batch) has read the row as failed, and clears its
      // jobs only once the first click (the row's own button) has put it back with its job.
      let firstDone!: () => void;
      const first = new Promise<void>((resolve) => (firstDone = resolve));
      const held = Object.fromEntries(
        Object.entries(fx.queues.queues).map(([name, queue]) => [
          name,
          {
            getJobState: async (jobId: string) => {
              await first;
              return queue.getJobState(jobId);
            },
            remove: (jobId: string) => queue.remove(jobId),
          },
        ]),
      ) as typeof fx.queues.queues;
      const queues = {
        queues: held,
        addSubmit: (data: SubmitJob) => fx.queues.addSubmit(data),
        addPoll: (data: PollJob, delayMs: number) => fx.queues.addPoll(data, delayMs),
      };
      const later = retryInScope({ ...deps(), queues }, "b1", scope);
      const own = await retryInScope(deps(), "b1", { rowId: id }).finally(firstDone);
      const reports = [own, await later];
      expect(reports.reduce((n, r) => n + r.repolled + r.requeued, 0)).toBe(1);
      expect((await fx.ledger.getRow("b1", id))?.status).toBe(id === "polled" ? "submitted" : "queued");
      expect(await fx.queues.queues[stage].getJobState(`b1/${id}`)).toBe("waiting");
      await fx.queues.queues[stage].remove(`b1/${id}`);
    }
  });
});

describe("poll after a retry", () => {
  function pollDeps(added: unknown[]): StageDeps {
    const kie: KieApi = {
      submit: async () => "never",
      getTask: async (taskId) => ({
        taskId,
        status: "failed",
        imageUrls: [],
        failCode: "501",
        failMessage: "bad luck",
      }),
      refreshDownloadUrl: async (url) => url,
      getCredits: async () => 100,
    };
    const fleet = {
      pollSlot: async () => {},
      releaseInFlight: async () => {},
      touchInFlight: async () => {},
    } as unknown as FleetPort;
    return {
      kie,
      ledger: fx.ledger,
      fleet,
      store: {} as StageDeps["store"],
      storePause: {} as StageDeps["storePause"],
      queues: {
        addSubmit: async (data) => void added.push(data),
        addSubmitBulk: async (jobs) => void added.push(...jobs),
        addPoll: async () => {},
        addArchive: async () => {},
        archiveJobLive: async () => false,
      },
      clock: { now: () => NOW, sleep: async () => {} },
      settings: {
        maxWaitMs: 30 * 60_000,
        maxResubmits: 1,
        downloadHosts: [],
        recordLagGraceMs: 60_000,
        fileLifetimeMs: 14 * 86_400_000,
        pollFirstMs: 5_000,
      } as StageDeps["settings"],
    };
  }

  async function pollOnce(resubmitOnFailure: boolean | undefined, added: unknown[]) {
    const data: PollJob = { batch: "b1", rowId: "x", taskId: "t1", resubmit: 1, submittedAt: NOW, checks: 0 };
    if (resubmitOnFailure !== undefined) data.resubmitOnFailure = resubmitOnFailure;
    const signal = new AbortController().signal;
    await runPoll(
      { key: "b1/x/r1", data, signal, attemptsMade: 0, attempts: 10, log: silentLogger() },
      pollDeps(added),
    );
  }

  async function rowPastItsResubmits(): Promise<void> {
    await fx.ledger.addRows("b1", [newRow("x")]);
    await moveRow(fx.ledger, "b1", "x", "submitted", { taskId: "t0" });
    await fx.ledger.transition("b1", "x", { to: "queued", incr: { resubmits: 1 } });
    await fx.ledger.transition("b1", "x", { to: "submitted", addTaskId: "t1" });
  }

  it("a retried poll whose task failed resubmits even past KIE_MAX_RESUBMITS", async () => {
    await rowPastItsResubmits();
    const added: unknown[] = [];
    await pollOnce(true, added);
    expect(added).toEqual([{ batch: "b1", rowId: "x", resubmit: 2 }]);
    expect(await fx.ledger.getRow("b1", "x")).toMatchObject({ status: "queued", resubmits: 2 });
  });

  it("without the flag, the row fails at its resubmit limit as before", async () => {
    await rowPastItsResubmits();
    const added: unknown[] = [];
    await pollOnce(undefined, added);
    expect(added).toEqual([]);
    const row = await fx.ledger.getRow("b1", "x");
    expect(row).toMatchObject({ status: "failed", resubmits: 1 });
    expect(row?.error).toContain("bad luck");
  });
});
