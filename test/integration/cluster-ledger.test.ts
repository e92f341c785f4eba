/**
 * The ledger, the fleet and the queues on a real Redis Cluster (three masters, three replicas on
 * loopback), through the product's connection factory: every script and pipeline stays in one
 * slot (a CROSSSLOT or "same slots allocation group" error fails these tests), and batches spread
 * over more than one master.
 */
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { startReconciler } from "../../src/app/reconciler.js";
import { QueueSet } from "../../src/bull/queues.js";
import { createLogger } from "../../src/core/logger.js";
import { createFleet } from "../../src/fleet/index.js";
import {
  createLedger,
  createResultIndex,
  type Ledger,
  ledgerKeys,
  requestHash,
} from "../../src/ledger/index.js";
import { uniquePrefix } from "../helpers/redis.js";
import { clusterContext } from "../helpers/redis-cluster.js";

const ctx = clusterContext();

const newRow = (id: string) => ({
  id,
  line: 2,
  prompt: `prompt ${id}`,
  params: {},
  metadata: { owner: "ada" },
  estimatedCredits: 4,
});

/** One row through every ledger write a worker makes: reserve, submit, settle, archive. */
async function runRow(ledger: Ledger, batch: string, rowId: string): Promise<void> {
  expect(await ledger.reserveBudget(batch, rowId, 4)).toBe("reserved");
  const taskId = `task-${batch}-${rowId}`;
  expect(
    (await ledger.transition(batch, rowId, { from: ["queued"], to: "submitted", addTaskId: taskId })).ok,
  ).toBe(true);
  await ledger.settleCredits(batch, rowId, 4, taskId);
  await ledger.transition(batch, rowId, { to: "archiving", set: { completedAt: 5 } });
  await ledger.transition(batch, rowId, { to: "archived" });
}

describe("on a Redis Cluster", () => {
  it("each batch's ledger sits in its own slot, batches land on more than one master, and every operation runs", async () => {
    const prefix = uniquePrefix("cl");
    const ledger = createLedger(ctx.redis, { prefix, ttlMs: 86_400_000 });
    const batches = Array.from({ length: 8 }, (_, i) => `b${i}`);
    for (const batch of batches) {
      await ledger.addRows(batch, ["r1", "r2", "r3"].map(newRow), { budget: 8 });
      await runRow(ledger, batch, "r1");
    }
    const keys = ledgerKeys(prefix);
    const masters = new Set(await Promise.all(batches.map((b) => ctx.cluster.masterOf(keys.batch(b)))));
    expect(masters.size).toBeGreaterThan(1);

    // The record of a paid-for task waits for a replica of its batch's master (WAIT), nothing else.
    const master = await ctx.cluster.masterOf(keys.batch("b7"));
    const waits = await ctx.cluster.calls(master, "wait");
    await ledger.transition("b7", "r2", { from: ["queued"], to: "submitted", addTaskId: "task-b7-r2" });
    await ledger.transition("b7", "r2", { to: "generating" });
    expect(await ctx.cluster.calls(master, "wait")).toBe(waits + 1);
    await ledger.transition("b7", "r2", { to: "queued" });

    // Reads across batches (one slot each) and within one (its rows, its state indexes).
    expect((await ledger.listBatches()).map((b) => b.batch).sort()).toEqual(batches);
    expect(await ledger.getBatch("b3")).toMatchObject({ total: 3, archived: 1, queued: 2, creditsSpent: 4 });
    const statuses: string[] = [];
    for await (const row of ledger.rows("b3")) statuses.push(row.status);
    expect(statuses).toEqual(["archived", "queued", "queued"]);
    const queued: string[] = [];
    for await (const page of ledger.statePages("b3", "queued")) queued.push(...page.map((e) => e.row.id));
    expect(queued).toEqual(["r2", "r3"]);
    expect((await ledger.getRow("b3", "r1"))?.taskIds).toEqual(["task-b3-r1"]);
    expect(await ledger.columns("b3")).toEqual(["owner"]);

    // Over the budget (8 credits, 4 spent, 4 reserved by r2): r3 parks, and wakes once r2 releases.
    expect(await ledger.reserveBudget("b3", "r2", 4)).toBe("reserved");
    expect(await ledger.reserveBudget("b3", "r3", 4)).toBe("over-budget");
    await ledger.releaseReservation("b3", "r2");
    expect((await ledger.wakeParked("b3")).woken.map((w) => w.rowId)).toEqual(["r3"]);

    // Finishing a batch sets its expiry (housekeeping walks its rows); retrying reopens it.
    for (const id of ["r2", "r3"]) await ledger.transition("b5", id, { to: "cancelled" });
    expect((await ledger.getBatch("b5"))?.finishedAt).toBeDefined();
    expect(await ctx.redis.pttl(keys.row("b5", "r2"))).toBeGreaterThan(0);
    await ledger.transition("b5", "r2", { to: "queued" });
    expect((await ledger.housekeep("b5")).complete).toBe(true);
    expect(await ctx.redis.pttl(keys.row("b5", "r2"))).toBe(-1);

    expect(await ledger.claimLease("reconcile", "me", 10_000)).toBe(true);
    // A task map entry an older version wrote (its own slot) goes with the purge too. Those versions
    // listed a row's tasks in one `taskIds` field: the row is given that layout as they left it.
    await ctx.redis.hset(keys.row("b0", "r1"), "taskIds", JSON.stringify(["task-b0-r1"]));
    await ctx.redis.set(keys.task("task-b0-r1"), "b0/r1");
    expect(await ledger.purge("b0")).toBe(3);
    expect(await ledger.getBatch("b0")).toBeUndefined();
    expect(await ctx.redis.exists(keys.task("task-b0-r1"))).toBe(0);
    for (const batch of batches.slice(1)) await ledger.purge(batch);
    expect(await ledger.listBatches()).toEqual([]);
  });

  it("the result index spreads over more than one master, and a dry run's exists asks across its tags", async () => {
    const prefix = uniquePrefix("cl-results");
    const index = createResultIndex(ctx.redis, { prefix, flavor: "qwen", ttlMs: 60_000 });
    const keys = ledgerKeys(prefix);
    const hashes = Array.from({ length: 32 }, (_, i) => requestHash("spread", { seed: i })!);
    const entry = {
      images: [{ key: "b/r.png", bytes: 10, sha256: "a".repeat(64), contentType: "image/png" }],
      taskId: "t-1",
      batch: "b",
      rowId: "r",
      archivedAt: 1,
    };
    try {
      for (const hash of hashes.slice(0, 16)) expect(await index.record(hash, entry)).toBe(true);
      // One pipeline across slots would be refused ("same slots allocation group").
      expect(await index.exists(hashes)).toEqual(hashes.map((_, i) => i < 16));
      expect(await index.lookup(hashes[0]!)).toEqual(entry);
      expect(await index.forget(hashes[0]!, entry)).toBe(true);
      const masters = new Set(
        await Promise.all(hashes.map((hash) => ctx.cluster.masterOf(keys.result(hash, "qwen")))),
      );
      expect(masters.size).toBeGreaterThan(1);
    } finally {
      for (const hash of hashes) await ctx.redis.del(keys.result(hash, "qwen"));
    }
  });

  it("the fleet's per-account state runs in its account's slot, and the three queues in theirs", async () => {
    const fleet = createFleet(ctx.redis, {
      deployment: "test",
      apiKey: `cluster-${uniquePrefix()}`,
      createRate: { limit: 2, windowMs: 60_000 },
    });
    await fleet.createLimiter.configureRate(2, 60_000);
    expect((await fleet.createLimiter.acquire()).ok).toBe(true);
    expect((await fleet.createLimiter.acquire()).ok).toBe(true);
    expect((await fleet.createLimiter.acquire()).ok).toBe(false);
    await fleet.pause.pause("bad-key", "401 from KIE");
    expect((await fleet.readGate()).paused?.kind).toBe("bad-key");
    expect(await fleet.pause.resume()).toBe(true);
    await fleet.inFlight.release("b/r1");
    expect(await fleet.inFlight.count()).toBe(0);

    // A prefix whose three queues are not all on one master (a random one is, one time in nine):
    // their jobs then move between masters, which is the point.
    const mastersOf = async (p: string) =>
      new Set(
        await Promise.all(["submit", "poll", "archive"].map((s) => ctx.cluster.masterOf(`{${p}:${s}}`))),
      );
    let prefix = uniquePrefix("clq");
    for (let tries = 0; tries < 50 && (await mastersOf(prefix)).size === 1; tries++)
      prefix = uniquePrefix("clq");
    const queues = new QueueSet({ connection: ctx.redis, queuePrefix: prefix });
    try {
      await queues.addSubmit({ batch: "b", rowId: "r1", resubmit: 0 });
      await queues.addPoll(
        { batch: "b", rowId: "r1", taskId: "t1", resubmit: 0, submittedAt: Date.now(), checks: 0 },
        60_000,
      );
      expect(await queues.queues.submit.getJobState("b/r1")).toBe("waiting");
      expect(await queues.queues.poll.getJobState("b/r1")).toBe("delayed");
      expect(await queues.wakePoll({ batch: "b", rowId: "r1", resubmit: 0 })).toBe(true);
      expect((await mastersOf(prefix)).size).toBeGreaterThan(1);
      for (const queue of Object.values(queues.queues)) await queue.obliterate({ force: true });
    } finally {
      await queues.close();
    }
  });

  it("the reconciler puts back a batch whose index entry was lost, and gives its rows their jobs", async () => {
    const prefix = uniquePrefix("clr");
    const ledger = createLedger(ctx.redis, { prefix });
    await ledger.addRows("lost", ["r1", "r2"].map(newRow));
    // The write between the batch's script and its index entry (two slots) lost: a producer that died.
    await ctx.redis.zrem(ledgerKeys(prefix).batches, "lost");
    expect(await ledger.listBatches()).toEqual([]);

    const queues = new QueueSet({ connection: ctx.redis, queuePrefix: prefix });
    const swept = new Promise<void>((resolve) => {
      const reconciler = startReconciler({
        redis: ctx.redis,
        ledger,
        queues,
        clock: { now: () => Date.now() },
        log: createLogger({ level: "silent" }),
        everyMs: 60_000,
        settleMs: 0,
        onSweep: () => {
          void reconciler.close().then(resolve);
        },
      });
    });
    try {
      await swept;
      expect((await ledger.listBatches()).map((b) => b.batch)).toEqual(["lost"]);
      expect(await queues.queues.submit.getJobState("lost/r1")).toBe("waiting");
      expect(await queues.queues.submit.getJobState("lost/r2")).toBe("waiting");
    } finally {
      for (const queue of Object.values(queues.queues)) await queue.obliterate({ force: true });
      await queues.close();
      await ledger.purge("lost");
    }
  });
  // Last in the file: it kills a replica, leaving its master without one.
  it("a task's record waits for a replica only while its master has one online, and says when it is unconfirmed", async () => {
    const prefix = uniquePrefix("clw");
    const ledger = createLedger(ctx.redis, { prefix });
    const keys = ledgerKeys(prefix);
    await ledger.addRows("w", ["r1", "r2"].map(newRow));
    const master = await ctx.cluster.masterOf(keys.row("w", "r1"));
    const direct = new Redis({ host: "127.0.0.1", port: master, lazyConnect: true });
    const replicasOf = async () => ((await direct.call("ROLE")) as [string, number, string[][]])[2];
    try {
      await direct.connect();
      const waits = await ctx.cluster.calls(master, "wait");
      const first = await ledger.transition("w", "r1", {
        from: ["queued"],
        to: "submitted",
        addTaskId: "t1",
      });
      expect(first.ok).toBe(true);
      expect(first.unreplicated).toBeUndefined();
      expect(await ctx.cluster.calls(master, "wait")).toBe(waits + 1);

      const [replica] = await replicasOf();
      await ctx.cluster.kill(Number(replica![1]));
      // The master drops the replica when its socket closes: asked until it has.
      while ((await replicasOf()).length > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const started = Date.now();
      const second = await ledger.transition("w", "r2", {
        from: ["queued"],
        to: "submitted",
        addTaskId: "t2",
      });
      expect(second.ok).toBe(true);
      expect(second.unreplicated).toMatch(/no replica online/);
      // No WAIT: it would have held this process's connection to the master for a second.
      expect(await ctx.cluster.calls(master, "wait")).toBe(waits + 1);
      expect(Date.now() - started).toBeLessThan(1_000);
      // A record sent again that finds its task there is not confirmed either, and says so.
      const again = await ledger.transition("w", "r2", {
        from: ["queued"],
        to: "submitted",
        addTaskId: "t2",
      });
      expect(again.ok).toBe(false);
      expect(again.unreplicated).toMatch(/no replica online/);
    } finally {
      direct.disconnect();
      await ledger.purge("w");
    }
  });
});

// The submit window: add-rows.lua, feed.lua and transition.lua of a window-managed batch, and the
// reconciler's walk that leaves held rows out, each stay in the batch's slot.
describe("the submit window on a Redis Cluster", () => {
  it("records held rows, feeds them, keeps held through moves and walks only fed rows, in each batch's slot", async () => {
    const ledger = createLedger(ctx.redis, { prefix: uniquePrefix("cluster-window") });
    for (const batch of ["w0", "w1", "w2", "w3"]) {
      const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
      expect(new Set(await ledger.addRows(batch, ids.map(newRow), { submitWindow: 4, priority: 9 }))).toEqual(
        new Set(["held"]),
      );
      const fed = await ledger.feedWindow(batch);
      expect(fed).toMatchObject({ priority: 9, more: false });
      expect(fed.fed.map(({ rowId }) => rowId)).toEqual(["r0", "r1", "r2", "r3"]);
      await ledger.transition(batch, "r0", { from: ["queued"], to: "submitted" });
      await ledger.transition(batch, "r1", { from: ["queued"], to: "submitted" });
      const low = await ledger.transition(batch, "r2", { from: ["queued"], to: "submitted" });
      expect(low.feed).toBe(true);
      expect((await ledger.feedWindow(batch)).fed.map(({ rowId }) => rowId)).toEqual(["r4", "r5", "r6"]);
      await ledger.transition(batch, "r11", { from: ["queued"], to: "cancelled" });
      expect(await ledger.getBatch(batch)).toMatchObject({ queued: 8, held: 4, fedSeq: 7 });
      const walked: string[] = [];
      for await (const page of ledger.statePages(batch, "queued", { skipHeld: true, skipParked: true }))
        walked.push(...page.map(({ row }) => row.id));
      expect(walked.sort()).toEqual(["r3", "r4", "r5", "r6"]);
      expect(await ledger.purge(batch)).toBe(12);
    }
  });
});
