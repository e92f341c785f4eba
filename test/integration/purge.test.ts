import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type PurgeDeps, purgeBatch } from "../../src/commands/purge.js";
import { retryBatch, retryRow } from "../../src/commands/retry.js";
import { accountId, accountKey } from "../../src/fleet/account.js";
import { InFlight } from "../../src/fleet/in-flight.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { readBatchStatus } from "../../src/report/status.js";
import { batchLines } from "../../src/report/status-text.js";
import { bullPrefix, type Stage } from "../../src/worker/jobs.js";
import { CliProcess } from "../helpers/processes.js";
import { keysWithPrefix, REDIS_URL } from "../helpers/redis.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

let fx: OpsFixture;
let workerRedis: Redis;
let workers: Worker[];

beforeEach(() => {
  fx = opsFixture();
  workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  workers = [];
});
afterEach(async () => {
  for (const worker of workers) await worker.close(true);
  await workerRedis.quit();
  await fx.close();
});

function deps(out = new Collector(), extra: Partial<PurgeDeps> = {}): PurgeDeps {
  return { ledger: fx.ledger, queues: fx.queues.queues, out, queuePrefix: fx.prefix, ...extra };
}

/** A BullMQ worker that takes jobs by hand, so a test can fail, complete or hold one. */
function manualWorker(stage: Stage): { worker: Worker; token: string } {
  const worker = new Worker(stage, null, { connection: workerRedis, prefix: bullPrefix(fx.prefix, stage) });
  workers.push(worker);
  return { worker, token: randomUUID() };
}

/** Adds a job under `id` and takes it by hand: active (held), failed or completed (both kept). */
async function jobIn(stage: Stage, id: string, state: "active" | "failed" | "completed") {
  const queue = fx.queues.queues[stage];
  await queue.add(
    stage,
    { batch: id.split("/")[0], rowId: id.split("/")[1] },
    {
      jobId: id,
      attempts: 1,
      removeOnFail: false,
      removeOnComplete: state !== "completed",
    },
  );
  const { worker, token } = manualWorker(stage);
  const job = await worker.getNextJob(token);
  expect(job?.id).toBe(id);
  if (state === "failed") await job!.moveToFailed(new Error("old failure"), token, false);
  if (state === "completed") await job!.moveToCompleted("done", token, false);
  expect(await queue.getJobState(id)).toBe(state);
  return { job: job!, token };
}

/**
 * Every key of the prefix that belongs to `batch` (ledger rows and hash, jobs and their sub-keys),
 * from `keys` when given (one SCAN of a big shared Redis serves several batches).
 */
async function keysOf(batch: string, keys?: string[]): Promise<string[]> {
  return (keys ?? (await keysWithPrefix(fx.redis, fx.prefix))).filter(
    // Its jobs (`{P:stage}:stage:<batch>/...`) and its ledger (`{P:<batch>}:ledger:...`).
    (key) => key.includes(`:${batch}/`) || key.startsWith(`{${fx.prefix}:${batch}}`),
  );
}

/** A batch with rows in several states and jobs in every queue state BullMQ has for it. */
async function populate(batch: string): Promise<void> {
  await fx.ledger.addRows(
    batch,
    ["q1", "q2", "s1", "g1", "a1", "d1", "f1", "h1"].map((id) => newRow(id)),
    { budget: 50 },
  );
  await moveRow(fx.ledger, batch, "s1", "submitted", { taskId: `${batch}-task-s1` });
  await moveRow(fx.ledger, batch, "g1", "generating", { taskId: `${batch}-task-g1` });
  await moveRow(fx.ledger, batch, "a1", "archiving", { taskId: `${batch}-task-a1` });
  await moveRow(fx.ledger, batch, "d1", "archived", { taskId: `${batch}-task-d1`, spent: 8 });
  await moveRow(fx.ledger, batch, "f1", "failed", { taskId: `${batch}-task-f1` });
}

describe("purge", () => {
  it("removes every key of the batch and its jobs in every queue state, and leaves another batch alone", async () => {
    await populate("gone");
    await populate("kept");
    // gone: submit failed, completed, waiting, prioritized; poll delayed (and a resubmit lineage),
    // waiting in a paused queue; archive active (held by a worker).
    await jobIn("submit", "gone/f1", "failed");
    await jobIn("submit", "gone/d1", "completed");
    const held = await jobIn("archive", "gone/a1", "active");
    await fx.queues.addSubmit({ batch: "gone", rowId: "q1", resubmit: 0 });
    await fx.queues.addSubmit({ batch: "gone", rowId: "q2", resubmit: 0 }, { priority: 5 });
    await fx.queues.addPoll(
      { batch: "gone", rowId: "g1", taskId: "t", resubmit: 0, submittedAt: 1, checks: 0 },
      60_000,
    );
    await fx.queues.addPoll(
      { batch: "gone", rowId: "g1", taskId: "t2", resubmit: 1, submittedAt: 1, checks: 0 },
      60_000,
    );
    await fx.queues.queues.poll.pause();
    await fx.queues.addPoll(
      { batch: "gone", rowId: "s1", taskId: "t3", resubmit: 0, submittedAt: 1, checks: 0 },
      0,
    );
    // kept: a waiting submit and a delayed poll.
    await fx.queues.addSubmit({ batch: "kept", rowId: "q1", resubmit: 0 });
    await fx.queues.addPoll(
      { batch: "kept", rowId: "g1", taskId: "k", resubmit: 0, submittedAt: 1, checks: 0 },
      60_000,
    );
    const keptKeys = await keysOf("kept");
    expect(keptKeys.length).toBeGreaterThan(8);

    const out = new Collector();
    const report = await purgeBatch(deps(out), "gone");

    expect(report.rows).toBe(8);
    expect(report.jobs.submit).toEqual({
      removed: 4,
      byState: { completed: 1, failed: 1, prioritized: 1, waiting: 1 },
      active: [],
    });
    expect(report.jobs.poll).toEqual({ removed: 3, byState: { delayed: 2, waiting: 1 }, active: [] });
    expect(report.jobs.archive).toEqual({ removed: 0, byState: {}, active: ["gone/a1"] });
    expect(out.lines()).toEqual([
      "batch gone: 8 rows in the ledger (3 queued, 1 submitted, 1 generating, 1 archiving, 1 archived, 1 failed), 8 jobs in the queues (submit 4, poll 3, archive 1) will be removed",
      "warning: batch gone is not finished: 3 rows in flight (already paid for) will not be archived (an archive already running may still write its files to the store, and purge leaves files there), 3 queued rows will not be submitted",
      "purged batch gone: 8 ledger rows deleted; 7 jobs removed: submit 4 (1 completed, 1 failed, 1 prioritized, 1 waiting); poll 3 (2 delayed, 1 waiting); archive 0",
      "archive: 1 jobs left because a worker is running them (gone/a1): they find their rows gone and end by themselves; `kie-batch purge gone` again removes anything they leave",
    ]);

    // Only the held job is left; once its worker completes it (removeOnComplete), nothing is.
    const left = await keysWithPrefix(fx.redis, fx.prefix);
    const heldKeys = [
      `{${fx.prefix}:archive}:archive:gone/a1`,
      `{${fx.prefix}:archive}:archive:gone/a1:lock`,
    ];
    expect(await keysOf("gone", left)).toEqual(heldKeys);
    expect(await keysOf("kept", left)).toEqual(keptKeys);
    await held.job.moveToCompleted("done", held.token, false);
    expect(await fx.redis.exists(...heldKeys)).toBe(0);
    expect(await fx.ledger.getBatch("gone")).toBeUndefined();
    expect(await fx.ledger.getRow("gone", "g1")).toBeUndefined();
    expect((await fx.ledger.getRow("kept", "g1"))?.taskIds).toEqual(["kept-task-g1"]);
    expect((await fx.ledger.listBatches()).map((b) => b.batch)).toEqual(["kept"]);
    expect(await fx.queues.queues.submit.getJobState("kept/q1")).toBe("waiting");
    expect(await fx.queues.queues.poll.getJobState("kept/g1")).toBe("delayed");
  }, 60_000); // two SCANs of a shared Redis that may hold millions of other keys

  it("keeps the batch marked until its jobs and slots are gone: an enqueue meanwhile is refused, not taken apart by the purge", async () => {
    await populate("busy");
    await fx.queues.addSubmit({ batch: "busy", rowId: "q1", resubmit: 0 });
    const tries: unknown[] = [];
    const submit = fx.queues.queues.submit;
    // While the purge removes the batch's jobs, the same file is enqueued again.
    const queues = {
      ...fx.queues.queues,
      submit: Object.assign(Object.create(submit), {
        remove: async (id: string) => {
          tries.push(await fx.ledger.addRows("busy", [newRow("new")]).catch((error: Error) => error));
          return submit.remove(id);
        },
      }),
    };
    await purgeBatch({ ...deps(), queues }, "busy");
    expect(tries).toEqual([expect.objectContaining({ code: "batch_purging" })]);
    expect(await keysOf("busy")).toEqual([]);
    expect(await fx.ledger.getBatch("busy")).toBeUndefined();
  });

  it("one purge of a batch at a time: a second one meanwhile is refused, removes nothing; once the first ends it may run", async () => {
    await populate("twice");
    // A purge running elsewhere holds the batch's purge lease.
    expect(await fx.ledger.claimLease("purge.twice", "elsewhere", 60_000)).toBe(true);
    await expect(purgeBatch(deps(), "twice")).rejects.toMatchObject({
      code: "purge_running",
      message: expect.stringContaining("a purge of batch twice is running"),
    });
    expect(await fx.ledger.getBatch("twice")).toMatchObject({ total: 8 });
    expect((await fx.ledger.getBatch("twice"))?.purging).toBeUndefined();
    await fx.ledger.releaseLease("purge.twice", "elsewhere");
    expect((await purgeBatch(deps(), "twice")).rows).toBe(8);
    // Its own lease is let go at the end.
    expect(await fx.ledger.claimLease("purge.twice", "next", 60_000)).toBe(true);
  });

  it("removes nothing when the operator says no", async () => {
    await populate("b1");
    await fx.queues.addSubmit({ batch: "b1", rowId: "q1", resubmit: 0 });
    const before = await fx.ledger.getBatch("b1");
    const asked: string[] = [];
    const out = new Collector();
    const report = await purgeBatch(
      deps(out, {
        confirm: async (plan) => {
          asked.push(`${plan.batch}: ${plan.summary?.total} rows, ${plan.jobs.submit.join(",")}`);
          return false;
        },
      }),
      "b1",
    );
    expect(asked).toEqual(["b1: 8 rows, b1/q1"]);
    expect(report.confirmed).toBe(false);
    expect(out.lines().at(-1)).toBe("purge of batch b1 cancelled: nothing removed");
    expect(await fx.ledger.getBatch("b1")).toEqual(before);
    expect((await fx.ledger.getRow("b1", "g1"))?.taskIds).toEqual(["b1-task-g1"]);
    expect(await fx.queues.queues.submit.getJobState("b1/q1")).toBe("waiting");
  });

  it("clears jobs left without a ledger, and refuses a batch that has neither", async () => {
    await fx.queues.addSubmit({ batch: "orphan", rowId: "r1", resubmit: 0 });
    const out = new Collector();
    const report = await purgeBatch(deps(out), "orphan");
    expect(report).toMatchObject({ rows: 0, jobs: { submit: { removed: 1 } } });
    expect(out.lines()[0]).toBe(
      "batch orphan: no ledger (already purged or expired); 1 jobs in the queues (submit 1, poll 0, archive 0) will be removed",
    );
    expect(await fx.queues.queues.submit.getJobState("orphan/r1")).toBe("unknown");

    await fx.ledger.addRows("real", [newRow("r1")]);
    await expect(purgeBatch(deps(), "orphan")).rejects.toMatchObject({
      name: "OpsError",
      code: "unknown_batch",
      message: expect.stringContaining('unknown batch "orphan"'),
    });
    await expect(purgeBatch(deps(), "bad/name")).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("a batch this deployment does not have frees no slot an earlier version named by job key alone (another deployment's)", async () => {
    const account = accountId(`purge-typo-${fx.prefix}`);
    const inFlight = new InFlight(fx.redis, { accountId: account, deployment: fx.prefix });
    const set = accountKey(account, "in-flight");
    await fx.redis.zadd(set, Date.now(), "prompts/7");
    try {
      await fx.ledger.addRows("real", [newRow("r1")]);
      const releaseBatch = (batch: string, options?: { ownOnly?: boolean }) =>
        inFlight.releaseBatch(batch, options);
      await expect(
        purgeBatch(deps(new Collector(), { inFlight: { releaseBatch } }), "prompts"),
      ).rejects.toMatchObject({
        code: "unknown_batch",
      });
      expect(await fx.redis.zrange(set, 0, -1)).toEqual(["prompts/7"]);
    } finally {
      await fx.redis.del(set);
    }
  });

  it("run again after one cut short once its jobs were gone, releases the batch's in-flight slots", async () => {
    const slots = new Set(["cut/r1", "cut/r2/r1", "other/r1"]);
    const inFlight = {
      releaseBatch: async (batch: string) => {
        const mine = [...slots].filter((slot) => slot.startsWith(`${batch}/`));
        for (const slot of mine) slots.delete(slot);
        return mine.length;
      },
    };
    const out = new Collector();
    const report = await purgeBatch(deps(out, { inFlight }), "cut");
    expect(report).toMatchObject({ rows: 0, inFlightReleased: 2 });
    expect(out.lines()).toEqual([
      "batch cut has no ledger and no jobs left (a purge cut short): 2 in-flight slots (KIE_MAX_IN_FLIGHT) of it released",
    ]);
    expect([...slots]).toEqual(["other/r1"]);
    // Nothing left of it: the typo's answer again.
    await fx.ledger.addRows("real", [newRow("r1")]);
    await expect(purgeBatch(deps(new Collector(), { inFlight }), "cut")).rejects.toMatchObject({
      code: "unknown_batch",
    });
  });

  it("marks the batch first: a row not yet deleted reserves nothing, so nothing of it is created while the walk goes on", async () => {
    await fx.ledger.addRows("walk", [newRow("a"), newRow("b")], { budget: 100 });
    // Both scripts known to Redis (a first run's NOSCRIPT retry would send the mark after the ask).
    await fx.ledger.markCancelled("walk", false);
    await fx.ledger.reserveBudget("walk", "a", 8);
    // The purge's mark is sent, then a submit job of a row still there asks for its reservation.
    const seen: string[] = [];
    const ledger = {
      ...fx.ledger,
      purge: async (batch: string) => {
        const purged = fx.ledger.purge(batch);
        seen.push(await fx.ledger.reserveBudget(batch, "b", 8).catch((error: Error) => error.message));
        return purged;
      },
    };
    await purgeBatch(deps(new Collector(), { ledger }), "walk");
    expect(seen).toEqual(["purging"]);
    expect(await fx.ledger.getBatch("walk")).toBeUndefined();
  });

  it("a purge cut short keeps its mark: enqueue and retry refuse the batch, the reconciler leaves it; run again, it deletes the batch and the file enqueues anew, counted once", async () => {
    await fx.ledger.addRows("again", [newRow("a"), newRow("b")], { budget: 100 });
    await moveRow(fx.ledger, "again", "b", "failed", { taskId: "again-task-b" });
    // What a purge killed after its mark and its first deletions leaves: the batch, marked, with
    // counters that still count the rows it deleted.
    await fx.redis.hset(ledgerKeys(fx.prefix).batch("again"), "purging", Date.now());
    await fx.redis.unlink(ledgerKeys(fx.prefix).row("again", "a"), ledgerKeys(fx.prefix).body("again", "a"));
    expect(await fx.ledger.reserveBudget("again", "b", 8)).toBe("purging");

    // The same manifest again: refused whole, nothing written (its deleted row would be counted twice).
    const refusal = {
      code: "batch_purging",
      message: expect.stringContaining("kie-batch purge again --yes"),
    };
    await expect(fx.ledger.addRows("again", [newRow("a"), newRow("c")])).rejects.toMatchObject(refusal);
    expect(await fx.ledger.getRow("again", "c")).toBeUndefined();
    // So is a retry, and a clear of the cancel's mark lifts no purge's mark.
    const retryDeps = {
      ledger: fx.ledger,
      queues: fx.queues,
      clock: { now: Date.now },
      out: new Collector(),
    };
    await expect(retryBatch(retryDeps, "again")).rejects.toMatchObject(refusal);
    await expect(retryRow(retryDeps, "again", "b")).rejects.toMatchObject(refusal);
    await fx.ledger.markCancelled("again", false);
    expect(await fx.ledger.getBatch("again")).toMatchObject({ purging: expect.any(Number), total: 2 });
    // `status` says it, and what finishes it.
    const status = await readBatchStatus(
      {
        ledger: fx.ledger,
        clock: { now: () => Date.now() },
        fleet: async () => ({ paused: null, archivePaused: null, accounts: [] }) as never,
      },
      "again",
    );
    expect(batchLines(status).join("\n")).toMatch(
      /being purged since .*kie-batch purge again --yes. finishes it/,
    );

    // Run again, the purge deletes what is left and the batch; the file then makes a new one.
    const report = await purgeBatch(deps(), "again");
    expect(report.rows).toBe(1);
    expect(await keysOf("again")).toEqual([]);
    expect(await fx.ledger.addRows("again", [newRow("a"), newRow("b")])).toEqual(["new", "new"]);
    expect(await fx.ledger.getBatch("again")).toMatchObject({ total: 2, queued: 2, failed: 0 });
    expect((await fx.ledger.getBatch("again"))?.purging).toBeUndefined();
  });
});

describe("kie-batch purge (spawned, no terminal)", () => {
  const run = async (args: string[]) => {
    const cli = new CliProcess("purge", args, {
      REDIS_URL,
      KIE_QUEUE_PREFIX: fx.prefix,
      LOG_LEVEL: "silent",
    });
    const exit = await cli.exited;
    return { code: exit.code, stdout: cli.stdout, stderr: cli.stderr };
  };

  it("refuses without --yes (exit 2, nothing removed), purges with it (exit 0), then knows no such batch (exit 2)", async () => {
    await populate("b1");
    await fx.queues.addSubmit({ batch: "b1", rowId: "q1", resubmit: 0 });

    const refused = await run(["purge", "b1"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('purge deletes batch "b1" for good and needs a confirmation');
    expect(refused.stderr).toContain("pass --yes");
    expect(await fx.ledger.getBatch("b1")).toBeDefined();

    const done = await run(["purge", "b1", "--yes"]);
    expect(done.stderr).toBe("");
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(
      "purged batch b1: 8 ledger rows deleted; 1 jobs removed: submit 1 (1 waiting)",
    );
    expect(await keysOf("b1")).toEqual([]);

    const again = await run(["purge", "b1", "--yes"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('unknown batch "b1"');
  });
  it("enqueue to a batch whose purge was cut short is refused (exit 2) naming the purge to run, nothing written", async () => {
    await fx.ledger.addRows("cut", [newRow("a")]);
    await fx.redis.hset(ledgerKeys(fx.prefix).batch("cut"), "purging", Date.now());
    const dir = await mkdtemp(join(tmpdir(), "kie-purge-"));
    const file = join(dir, "rows.csv");
    await writeFile(file, "id,prompt\nb,a red fox\n");
    try {
      const refused = await run(["enqueue", file, "--batch", "cut"]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("kie-batch: batch cut is being purged");
      expect(refused.stderr).toContain("kie-batch purge cut --yes");
      expect(await fx.ledger.getRow("cut", "b")).toBeUndefined();
      expect(await fx.ledger.getBatch("cut")).toMatchObject({ total: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
