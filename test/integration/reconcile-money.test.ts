/**
 * A reservation left on a row that ended (reconcile-money.ts): a row that ends (cancelled,
 * failed) holding its reservation has it given back by whoever moved it, in a second step; a
 * crash or an error between the two kept those credits from the budget for good, and rows parked
 * over the budget waited for room that never came. The move notes the row (transition.lua), and
 * the reconciler gives back what nothing else will: never what a live job will still settle,
 * kept as uncertain when the row's failed job had a create on the wire.
 */
import { PassThrough } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import { cancelBatch } from "../../src/commands/cancel.js";
import { silentLogger } from "../../src/core/logger.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { type ReconcileDeps, reconcileAll, reconcileBatch } from "../../src/worker/reconcile.js";
import { ledgerQueuesContext, liveSubmitJobIds } from "../helpers/ledger-context.js";
import { reconcileDeps } from "../helpers/reconcile-deps.js";
import { newRow, rowIds, rowsAskingBudget } from "./ops-helpers.js";

const MINUTE = 60_000;
const ids = rowIds;

let now: number;
const clock = { now: () => now };
const ctx = ledgerQueuesContext({ clock });
beforeEach(() => {
  now = Date.now();
});

const deps = (): ReconcileDeps => reconcileDeps(ctx, clock, 50);
const endedKey = () => ledgerKeys(ctx.prefix).reservedEnded("b");
const noted = async () => (await ctx.redis.smembers(endedKey())).sort();
const parked = () => ctx.redis.zrange(ledgerKeys(ctx.prefix).parked("b"), 0, -1);
const batch = async () => (await ctx.ledger.getBatch("b"))!;

const submitJobIds = () => liveSubmitJobIds(ctx);

/** Four rows of 8 credits, a budget of 16: r-01 and r-02 reserve, r-03 and r-04 park. */
async function fourRowsTwoFit(): Promise<void> {
  await rowsAskingBudget(ctx.ledger, 4, 16);
  expect(await parked()).toEqual(["r-03", "r-04"]);
}

describe("reservations left on ended rows", () => {
  it("a row cancelled holding its reservation, whose release was lost: given back, and a parked row woken", async () => {
    await fourRowsTwoFit();
    // A cancel whose release never came (the CLI stopped, its job was running and its worker died).
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "cancelled" });
    expect(await noted()).toEqual(["r-01"]);
    await ctx.queues.addSubmit({ batch: "b", rowId: "r-02", resubmit: 0 });
    now += 2 * MINUTE;

    const report = await reconcileBatch(deps(), "b");
    expect(report).toMatchObject({ reservations: 1 });
    expect(await ctx.ledger.getRow("b", "r-01")).toMatchObject({ status: "cancelled", creditsReserved: 0 });
    // The 8 credits went back, and the first parked row took them (its job added).
    expect(await parked()).toEqual(["r-04"]);
    expect(await submitJobIds()).toEqual(["b/r-02", "b/r-03"]);
    expect(await batch()).toMatchObject({ creditsReserved: 16, waitingBudget: 1 });
    expect(await noted()).toEqual([]);
    // Sent again: nothing more.
    expect((await reconcileBatch(deps(), "b")).reservations).toBeUndefined();
    expect((await batch()).creditsReserved).toBe(16);
  });

  it("leaves a reservation that a live job will settle, and a row that ended moments ago", async () => {
    await fourRowsTwoFit();
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "cancelled" });
    await ctx.ledger.transition("b", "r-02", { from: ["queued"], to: "cancelled" });
    // r-01's submit job is still there (waiting, or running with a create on the wire).
    await ctx.queues.addSubmit({ batch: "b", rowId: "r-01", resubmit: 0 });
    // Ended less than the settle time ago: its mover's next step may be on its way.
    expect((await reconcileBatch(deps(), "b")).reservations).toBeUndefined();
    expect((await batch()).creditsReserved).toBe(16);
    now += 2 * MINUTE;
    expect((await reconcileBatch(deps(), "b")).reservations).toBe(1);
    expect(await ctx.ledger.getRow("b", "r-01")).toMatchObject({ creditsReserved: 8 });
    expect(await ctx.ledger.getRow("b", "r-02")).toMatchObject({ creditsReserved: 0 });
    expect(await noted()).toEqual(["r-01"]);
  });

  it("a row failed by a job BullMQ gave up on: given back, or kept uncertain when a create was on the wire", async () => {
    await fourRowsTwoFit();
    for (const [id, creating] of [
      ["r-01", false],
      ["r-02", true],
    ] as const) {
      // The runner's give-up, cut short after the row's move to failed.
      await ctx.queues.addSubmit({ batch: "b", rowId: id, resubmit: 0 });
      if (creating)
        await ctx.queues.queues.submit
          .getJob(`b/${id}`)
          .then((j) => j!.updateData({ batch: "b", rowId: id, resubmit: 0, creating: now }));
      await ctx.redis.lrem(ctx.queues.queues.submit.toKey("wait"), 0, `b/${id}`);
      await ctx.redis.zadd(ctx.queues.queues.submit.toKey("failed"), now, `b/${id}`);
      await ctx.ledger.transition("b", id, { from: ["queued"], to: "failed", set: { error: "gave up" } });
    }
    now += 2 * MINUTE;
    expect((await reconcileBatch(deps(), "b")).reservations).toBe(2);
    expect(await ctx.ledger.getRow("b", "r-01")).toMatchObject({ creditsReserved: 0, uncertain: 0 });
    expect(await ctx.ledger.getRow("b", "r-02")).toMatchObject({ creditsReserved: 0, uncertain: 1 });
    // 8 back to the budget (one parked row woken), 8 counted uncertain for good.
    expect(await batch()).toMatchObject({ creditsReserved: 8, creditsUncertain: 8, waitingBudget: 1 });
    expect(await noted()).toEqual([]);
  });

  it("a row failed with its task in flight keeps the task's reservation (it may still be charged)", async () => {
    await fourRowsTwoFit();
    // Past KIE_MAX_WAIT, a status call failed for good, a poll job given up on: the task is
    // recorded, not settled; `retry` polls it again, and what it costs is settled then.
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "submitted", addTaskId: "t-1" });
    await ctx.ledger.transition("b", "r-01", {
      from: ["submitted"],
      to: "failed",
      set: { error: "still generating" },
    });
    expect(await noted()).toEqual([]);
    // Noted before (failed at submit, then retried and created): its entry is still there.
    await ctx.ledger.transition("b", "r-02", { from: ["queued"], to: "failed" });
    await ctx.ledger.transition("b", "r-02", { from: ["failed"], to: "queued" });
    await ctx.ledger.transition("b", "r-02", { from: ["queued"], to: "generating", addTaskId: "t-2" });
    await ctx.ledger.transition("b", "r-02", { from: ["generating"], to: "failed" });
    expect(await noted()).toEqual(["r-02"]);
    now += 2 * MINUTE;
    expect((await reconcileBatch(deps(), "b")).reservations).toBeUndefined();
    expect(await batch()).toMatchObject({ creditsReserved: 16, waitingBudget: 2 });
    expect(await ctx.ledger.releaseEnded("b", "r-02")).toEqual({ released: 0, parked: false });
    // Once the task is settled (retry's poll), nothing is left to give back; one counted
    // uncertain gives its reservation up there too.
    await ctx.ledger.settleCredits("b", "r-01", 6, "t-1");
    expect((await ctx.ledger.getRow("b", "r-01"))?.creditsReserved).toBe(0);
  });

  it("a row retried back to queued keeps what it holds", async () => {
    await fourRowsTwoFit();
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "failed" });
    await ctx.ledger.transition("b", "r-01", { from: ["failed"], to: "queued" });
    expect(await ctx.ledger.releaseEnded("b", "r-01")).toEqual({ released: 0, parked: false });
    expect(await ctx.ledger.getRow("b", "r-01")).toMatchObject({ creditsReserved: 8 });
    // Once ended again, it is given back.
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "cancelled" });
    expect(await ctx.ledger.releaseEnded("b", "r-01")).toEqual({ released: 8, parked: true });
  });

  it("a finished batch's leaked reservation is repaired by the sweep of every batch", async () => {
    await ctx.ledger.addRows(
      "b",
      ids(2).map((id) => newRow(id)),
      { budget: 16 },
    );
    for (const id of ids(2)) await ctx.ledger.reserveBudget("b", id, 8);
    for (const id of ids(2)) await ctx.ledger.transition("b", id, { from: ["queued"], to: "cancelled" });
    expect((await batch()).finishedAt).toBeDefined();
    now += 2 * MINUTE;
    await reconcileAll(deps());
    expect(await batch()).toMatchObject({ creditsReserved: 0 });
    expect(await ctx.redis.exists(endedKey())).toBe(0);
  });

  it("a row that reserves while not queued (cancelled as its job ran) is noted; purge removes the set", async () => {
    await ctx.ledger.addRows("b", [newRow("r-01")], { budget: 16 });
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "cancelled" });
    expect(await noted()).toEqual([]);
    expect(await ctx.ledger.reserveBudget("b", "r-01", 8)).toBe("reserved");
    expect(await noted()).toEqual(["r-01"]);
    expect(await ctx.redis.pttl(endedKey())).toBeGreaterThan(0);
    await ctx.ledger.purge("b");
    expect(await ctx.redis.exists(endedKey())).toBe(0);
  });

  it("cancel counts a removed job's create on the wire before it removes the job", async () => {
    await ctx.ledger.addRows("b", [newRow("r-01")], { budget: 16 });
    expect(await ctx.ledger.reserveBudget("b", "r-01", 8)).toBe("reserved");
    // A job whose worker died mid-create: its data carries the mark, its lock lapsed.
    await ctx.queues.queues.submit.add("submit", { creating: 1 }, { jobId: "b/r-01" });
    const removals: string[] = [];
    const submit = ctx.queues.queues.submit;
    const queues = Object.assign(Object.create(ctx.queues) as typeof ctx.queues, {
      queues: {
        ...ctx.queues.queues,
        submit: Object.assign(Object.create(submit) as typeof submit, {
          remove: async (id: string) => {
            // By the time the job goes, the attempt is already counted.
            removals.push(`${id}: uncertain ${(await ctx.ledger.getRow("b", "r-01"))!.uncertain}`);
            return submit.remove(id);
          },
        }),
      },
    });
    const out = new PassThrough().resume();
    const submitJobLocked = async (key: string) =>
      (await ctx.redis.exists(submit.toKey(`${key}:lock`))) === 1;
    const report = await cancelBatch({ ledger: ctx.ledger, queues, out, submitJobLocked }, "b");
    expect(report).toMatchObject({ cancelled: 1, jobsRemoved: 1, uncertain: 1 });
    expect(removals).toEqual(["b/r-01: uncertain 1"]);
    expect(await batch()).toMatchObject({ creditsReserved: 0, creditsUncertain: 8 });
    // Nothing is left for the reconciler: its reservation is counted, not given back.
    expect(await noted()).toEqual(["r-01"]);
    now += 2 * MINUTE;
    expect((await reconcileBatch({ ...deps(), log: silentLogger() }, "b")).reservations).toBeUndefined();
    expect(await noted()).toEqual([]);
  });

  it("a set longer than one look, of rows that must stay, does not hide a row noted behind them", async () => {
    // 300 rows holding a reservation while still queued (each stays in the set: nothing to give
    // back), noted as a long run of rows in flight would be; a look reads about 50 of them.
    await rowsAskingBudget(ctx.ledger, 300, 300 * 8);
    const all = ids(300);
    await ctx.redis.sadd(endedKey(), ...all);
    // The row whose release was lost is one the first look (from the set's start) does not read.
    const [, first] = await ctx.redis.sscan(endedKey(), "0", "COUNT", 50);
    const lost = all.find((id) => !first.includes(id))!;
    await ctx.ledger.transition("b", lost, { from: ["queued"], to: "cancelled" });
    now += 2 * MINUTE;

    const cursors = new Map<string, string>();
    const sweeping = { ...deps(), moneyCursors: cursors, moneySweepMax: 50 };
    let repaired = 0;
    let sweeps = 0;
    while (repaired === 0 && sweeps < 20) {
      repaired = (await reconcileBatch(sweeping, "b")).reservations ?? 0;
      sweeps += 1;
    }
    expect(repaired).toBe(1);
    // The set (~300 rows, pages of ~50) is read whole within about seven looks, not one look for good.
    expect(sweeps).toBeGreaterThan(1);
    expect(sweeps).toBeLessThanOrEqual(8);
    expect(await ctx.ledger.getRow("b", lost)).toMatchObject({ status: "cancelled", creditsReserved: 0 });
    expect(await ctx.redis.sismember(endedKey(), lost)).toBe(0);
    expect(await ctx.redis.scard(endedKey())).toBe(299);
  });
});
