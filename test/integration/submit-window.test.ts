/**
 * The submit window (issue 10): a window-managed batch's rows get their submit jobs a window at a
 * time, in manifest order. feed.lua gives the next held rows (queued, seq >= fedSeq, no job) to
 * its caller; transitions keep the `held` count exact and say when the window runs low; the
 * reconciler never gives a held row a job, feeds a window left low, and repairs a lost add.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { createLedger } from "../../src/ledger/index.js";
import { ledgerKeys } from "../../src/ledger/keys.js";
import { wakingLedger } from "../../src/worker/budget-wake.js";
import { jobKey } from "../../src/worker/jobs.js";
import { reconcileBatch } from "../../src/worker/reconcile.js";
import { feedSubmitWindow } from "../../src/worker/submit-window.js";
import { ledgerQueuesContext } from "../helpers/ledger-context.js";
import { reconcileDeps } from "../helpers/reconcile-deps.js";
import { newRow } from "./ops-helpers.js";

const MINUTE = 60_000;
const ids = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `r-${String(from + i + 1).padStart(3, "0")}`);

let now: number;
const clock = { now: () => now };
const ctx = ledgerQueuesContext({ clock });
beforeEach(() => {
  now = Date.now();
});

async function submitJobs(): Promise<{ id: string; priority: number }[]> {
  const jobs = await ctx.queues.queues.submit.getJobs(["wait", "delayed", "prioritized", "active"]);
  return jobs
    .map((job) => ({ id: job.id ?? "", priority: job.opts.priority ?? 0 }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}
const jobIds = async () => (await submitJobs()).map(({ id }) => id);
const keyOf = (id: string) => jobKey("b", id);

/** `n` rows in a batch with a window of `window`, at priority 7; nothing fed yet. */
async function windowed(n: number, window: number): Promise<void> {
  const outcomes = await ctx.ledger.addRows(
    "b",
    ids(n).map((id) => newRow(id)),
    { submitWindow: window, priority: 7 },
  );
  expect(new Set(outcomes)).toEqual(new Set(["held"]));
}

const feed = () => feedSubmitWindow({ ledger: ctx.ledger, queues: ctx.queues }, "b");

describe("feeding a batch's submit window", () => {
  it("feeds held rows in manifest order up to the window, at the batch's priority, and keeps held exact", async () => {
    await windowed(10, 4);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ queued: 10, held: 10, fedSeq: 0 });
    expect(await feed()).toBe(4);
    expect(await submitJobs()).toEqual(ids(4).map((id) => ({ id: keyOf(id), priority: 7 })));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ queued: 10, held: 6, fedSeq: 4 });
    // The window is full: feeding again feeds nothing.
    expect(await feed()).toBe(0);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 6, fedSeq: 4 });
  });

  it("feeds nothing in a batch cancel ran on (its walk cancels the held rows), until the mark goes", async () => {
    await windowed(10, 4);
    await ctx.ledger.markCancelled("b", true);
    expect(await feed()).toBe(0);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 10, fedSeq: 0 });
    await ctx.ledger.markCancelled("b", false);
    expect(await feed()).toBe(4);
  });

  it("passes over held rows that left queued (a cancel) and fed rows parked over the budget", async () => {
    await windowed(10, 3);
    // A held row cancelled leaves the held count at once.
    expect((await ctx.ledger.transition("b", "r-002", { from: ["queued"], to: "cancelled" })).ok).toBe(true);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ queued: 9, held: 9 });
    expect(await feed()).toBe(3);
    expect(await jobIds()).toEqual(["r-001", "r-003", "r-004"].map(keyOf));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 6, fedSeq: 4 });

    // Fed rows that park wait for their wake; while they wait, held rows are fed only when they
    // fit the room left (none here: r-005 costs 8, the room is 0).
    await ctx.ledger.setBudget("b", 8);
    expect(await ctx.ledger.reserveBudget("b", "r-001", 8)).toBe("reserved");
    expect(await ctx.ledger.reserveBudget("b", "r-003", 8)).toBe("over-budget");
    await ctx.ledger.transition("b", "r-001", { from: ["queued"], to: "submitted" });
    await ctx.ledger.transition("b", "r-004", { from: ["queued"], to: "failed" });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 1, held: 6 });
    expect(await feed()).toBe(0);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 6, fedSeq: 4 });
  });

  it("while rows wait for budget, feeds held rows in manifest order while they fit the room left, parking (no job) one that does not while a cheaper row may", async () => {
    const costs = [20, 4, 4, 8, 4, 8];
    await ctx.ledger.addRows(
      "b",
      ids(6).map((id, i) => newRow(id, { estimatedCredits: costs[i] })),
      { submitWindow: 1, priority: 7, budget: 12 },
    );
    expect(await feed()).toBe(1);
    // r-001 (20) parks: the fed rows fall to 0, and room 12 takes r-002 and r-003 (4 + 4) only
    // when the window allows them.
    expect(await ctx.ledger.reserveBudget("b", "r-001", 20)).toBe("over-budget");
    expect(await feed()).toBe(1);
    expect(await ctx.ledger.reserveBudget("b", "r-002", 4)).toBe("reserved");
    const moved = await ctx.ledger.transition("b", "r-002", { from: ["queued"], to: "submitted" });
    // Rows wait, but the budget has room (8): the move says feed.
    expect(moved.feed).toBe(true);
    expect(await feed()).toBe(1);
    expect(await jobIds()).toEqual(ids(3).map(keyOf));
    expect(await ctx.ledger.reserveBudget("b", "r-003", 4)).toBe("reserved");
    await ctx.ledger.transition("b", "r-003", { from: ["queued"], to: "submitted" });
    // Room 4: r-004 (8) does not fit, and the batch's cheapest row (4) would: r-004 parks here,
    // with no job run, and r-005 (4) behind it is fed. r-006 stays held (the window is full).
    expect(await feed()).toBe(1);
    expect(await jobIds()).toEqual([...ids(3), "r-005"].map(keyOf));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 1, fedSeq: 5, waitingBudget: 2 });
    expect(await ctx.ledger.getRow("b", "r-004")).toMatchObject({ status: "queued", waitingBudget: true });
    expect(await ctx.redis.zrange(ledgerKeys(ctx.prefix).parked("b"), 0, -1)).toEqual(["r-001", "r-004"]);
    expect(await ctx.ledger.reserveBudget("b", "r-005", 4)).toBe("reserved");
    await ctx.ledger.transition("b", "r-005", { from: ["queued"], to: "submitted" });
    // Room 2 (a raise of 2): not even the cheapest row fits, so the feed stops at r-006, held.
    await ctx.ledger.setBudget("b", 14);
    expect(await ctx.ledger.feedWindow("b")).toMatchObject({ fed: [], more: false });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 1, fedSeq: 5, waitingBudget: 2 });
    // Over the budget (a settle above the estimate): the move does not ask for a feed.
    await ctx.ledger.setBudget("b", 7);
    const over = await ctx.ledger.transition("b", "r-004", { from: ["queued"], to: "cancelled" });
    expect(over.feed).toBeUndefined();
    // No budget: the batch never waits, and the feed goes on in manifest order.
    await ctx.ledger.setBudget("b", null);
    expect(await feed()).toBe(1);
    expect(await jobIds()).toEqual([...ids(3), "r-005", "r-006"].map(keyOf));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 0, fedSeq: 6 });
  });

  it("parks held rows that do not fit only up to two windows' worth (1,000 at least) waiting for budget: a raise wakes about that many, not the batch", async () => {
    const costs = [12, 4, ...Array.from({ length: 1050 }, () => 8)];
    await ctx.ledger.addRows(
      "b",
      costs.map((estimatedCredits, i) => newRow(`r-${String(i + 1).padStart(4, "0")}`, { estimatedCredits })),
      { submitWindow: 2, budget: 9 },
    );
    expect(await feed()).toBe(2);
    expect(await ctx.ledger.reserveBudget("b", "r-0001", 12)).toBe("over-budget");
    expect(await ctx.ledger.reserveBudget("b", "r-0002", 4)).toBe("reserved");
    await ctx.ledger.transition("b", "r-0002", { from: ["queued"], to: "submitted" });
    // Room 5: no row of 8 fits, the cheapest (4) would: rows of 8 park, no job run, up to 1,000 waiting.
    expect(await feed()).toBe(0);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 1000, held: 51 });
    expect(await jobIds()).toEqual(["r-0001", "r-0002"].map(keyOf));
  });

  it("a held row that fits the room the feed began with stays held (the rows fed before it may reserve nothing): a fed row's move feeds it", async () => {
    const costs = [20, 20, 10, 10, 4];
    await ctx.ledger.addRows(
      "b",
      ids(5).map((id, i) => newRow(id, { estimatedCredits: costs[i] })),
      { submitWindow: 2, budget: 15 },
    );
    expect(await feed()).toBe(2);
    expect(await ctx.ledger.reserveBudget("b", "r-001", 20)).toBe("over-budget");
    expect(await ctx.ledger.reserveBudget("b", "r-002", 20)).toBe("over-budget");
    // Room 15: r-003 (10) is fed; r-004 (10) does not fit the 5 left, but fits the 15: held.
    expect(await feed()).toBe(1);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 2, held: 2 });
    // r-003 is a reuse hit: archived with no reservation, no settle. Its move feeds r-004.
    const ledger = wakingLedger(ctx.ledger, ctx.queues, { warn: () => {} });
    await ledger.transition("b", "r-003", { from: ["queued"], to: "archived" });
    expect(await jobIds()).toContain(keyOf("r-004"));
    expect(await ctx.ledger.getRow("b", "r-004")).toMatchObject({ status: "queued", waitingBudget: false });
  });

  it("gives each row to one feeder when several feed at once", async () => {
    await windowed(300, 120);
    const results = await Promise.all(Array.from({ length: 6 }, () => ctx.ledger.feedWindow("b", 50)));
    const fed = results.flatMap((r) => r.fed.map(({ rowId }) => rowId));
    expect(new Set(fed).size).toBe(fed.length);
    const summary = await ctx.ledger.getBatch("b");
    // Exactly the rows below fedSeq were fed, each once, and no more than the window.
    expect(fed.length).toBeLessThanOrEqual(120);
    expect(fed.sort()).toEqual(ids(summary!.fedSeq!));
    expect(summary!.held).toBe(300 - fed.length);
  });

  it("a move out of queued says when the window is below half full, and the worker's ledger feeds it", async () => {
    await windowed(20, 4);
    expect(await feed()).toBe(4);
    const ledger = wakingLedger(ctx.ledger, ctx.queues, { warn: () => {} });
    // 4 fed: one submitted leaves 3 (not below 2); a second leaves 2 (not below 2); a third, 1.
    const first = await ctx.ledger.transition("b", "r-001", { from: ["queued"], to: "submitted" });
    expect(first.feed).toBeUndefined();
    await ctx.ledger.transition("b", "r-002", { from: ["queued"], to: "submitted" });
    const third = await ledger.transition("b", "r-003", { from: ["queued"], to: "archived" });
    expect(third.ok).toBe(true);
    // Fed: 3 more (the window back to 4), r-005 to r-007.
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ queued: 17, held: 13, fedSeq: 7 });
    expect(await jobIds()).toEqual(ids(7).map(keyOf));
    // A move that is not out of queued never asks.
    const moved = await ctx.ledger.transition("b", "r-001", { from: ["submitted"], to: "generating" });
    expect(moved.feed).toBeUndefined();
  });

  it("a row retried back into queued above fedSeq joins the held count and is fed once", async () => {
    await windowed(6, 2);
    await ctx.ledger.transition("b", "r-005", { from: ["queued"], to: "failed" });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 5 });
    await ctx.ledger.transition("b", "r-005", { from: ["failed"], to: "queued" });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 6, queued: 6 });
    await ctx.ledger.transition("b", "r-001", { from: ["queued"], to: "cancelled" });
    await ctx.ledger.transition("b", "r-002", { from: ["queued"], to: "cancelled" });
    // Window 2 with nothing fed: r-003, r-004, then r-005 and r-006.
    expect(await feed()).toBe(2);
    await ctx.ledger.transition("b", "r-003", { from: ["queued"], to: "submitted" });
    await ctx.ledger.transition("b", "r-004", { from: ["queued"], to: "submitted" });
    expect(await feed()).toBe(2);
    expect(await jobIds()).toEqual(["r-003", "r-004", "r-005", "r-006"].map(keyOf));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 0, fedSeq: 6 });
  });

  it("leaves a batch recorded without a window as before: every row new, no held, nothing to feed", async () => {
    const outcomes = await ctx.ledger.addRows(
      "b",
      ids(5).map((id) => newRow(id)),
    );
    expect(outcomes).toEqual(Array(5).fill("new"));
    // Appending with a window does not make an old batch window-managed.
    const more = await ctx.ledger.addRows("b", [newRow("x")], { submitWindow: 2 });
    expect(more).toEqual(["new"]);
    const summary = await ctx.ledger.getBatch("b");
    expect(summary?.held).toBeUndefined();
    expect(summary?.fedSeq).toBeUndefined();
    expect(await ctx.ledger.feedWindow("b")).toEqual({ fed: [], more: false });
    const moved = await ctx.ledger.transition("b", "r-001", { from: ["queued"], to: "cancelled" });
    expect(moved.feed).toBeUndefined();
  });

  it("appends new rows to a window-managed batch as held, and says which duplicates are due a job", async () => {
    await windowed(4, 2);
    expect(await feed()).toBe(2);
    const again = await ctx.ledger.addRows(
      "b",
      [...ids(4), "r-005"].map((id) => newRow(id)),
      { submitWindow: 2 },
    );
    // r-001, r-002 fed and still queued: due a job (re-added, a lost add healed); r-003, r-004 held.
    expect(again).toEqual(["duplicate-queued", "duplicate-queued", "duplicate", "duplicate", "held"]);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 3, queued: 5 });
  });
});

describe("the reconciler and the submit window", () => {
  it("never gives a held row a job, feeds a window left low, and repairs a fed row whose add was lost", async () => {
    await windowed(30, 5);
    // The producer died after recording its rows: no job at all. The sweep feeds the first window.
    now += 2 * MINUTE;
    const first = await reconcileBatch(reconcileDeps(ctx, clock, 7), "b");
    expect(first).toMatchObject({ fed: 5, requeued: 0 });
    expect(await submitJobs()).toEqual(ids(5).map((id) => ({ id: keyOf(id), priority: 7 })));

    // A feed whose adds were lost: rows below fedSeq, queued, without a job.
    for (const id of ids(5)) await ctx.queues.queues.submit.remove(keyOf(id));
    for (const id of ids(3)) await ctx.ledger.transition("b", id, { from: ["queued"], to: "submitted" });
    const lost = await ctx.ledger.feedWindow("b");
    expect(lost.fed.map(({ rowId }) => rowId)).toEqual(ids(3, 5));
    now += 2 * MINUTE;
    const second = await reconcileBatch(reconcileDeps(ctx, clock, 7), "b");
    // r-004, r-005 (their jobs removed) and r-006..r-008 (fed, never added) get theirs back;
    // the 22 held rows get none.
    expect(second).toMatchObject({ requeued: 5 });
    expect(second.fed).toBeUndefined();
    // Repaired at the batch's priority, as fed (BullMQ would run unprioritised jobs first).
    expect(await submitJobs()).toEqual(ids(5, 3).map((id) => ({ id: keyOf(id), priority: 7 })));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ held: 22, fedSeq: 8 });
  });

  it("does not take rows fed while it reads a page (their adds not landed yet) for jobless ones", async () => {
    await windowed(30, 5);
    expect(await feed()).toBe(5);
    const keys = ledgerKeys(ctx.prefix);
    // A feeder between its feed step and its adds, right after the sweep read its queued page:
    // the window widened to 8 and r-006..r-008 fed, their jobs not added yet.
    let fedMeanwhile: string[] = [];
    const redis = new Proxy(ctx.redis, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop !== "zrange" || typeof value !== "function") {
          return typeof value === "function" ? value.bind(target) : value;
        }
        return async (...args: unknown[]) => {
          const page = await (value as (...a: unknown[]) => Promise<string[]>).apply(target, args);
          if (args[0] === keys.stateIndex("b", "queued") && fedMeanwhile.length === 0) {
            await ctx.redis.hset(keys.batch("b"), "submitWindow", 8);
            fedMeanwhile = (await ctx.ledger.feedWindow("b")).fed.map(({ rowId }) => rowId);
          }
          return page;
        };
      },
    });
    const sweeping = createLedger(redis, { prefix: ctx.prefix, clock });
    now += 2 * MINUTE;
    const report = await reconcileBatch({ ...reconcileDeps(ctx, clock, 100), ledger: sweeping }, "b");
    expect(fedMeanwhile).toEqual(ids(3, 5));
    expect(report).toMatchObject({ requeued: 0, failed: 0 });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ repaired: 0, fedSeq: 8 });
    expect(await jobIds()).toEqual(ids(5).map(keyOf));
  });
});
