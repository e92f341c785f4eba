/**
 * Rows over the budget park (issue 10): the over-budget reserve puts the row in its batch's parked
 * set by seq, in the same script, and its job ends; a wake reserves for as many parked rows as
 * the budget holds, in manifest order, and the caller adds their jobs. The reconciler never gives
 * a parked row a job, and wakes those that fit (a safety net for a lost wake).
 */
import { beforeEach, describe, expect, it } from "vitest";
import { ledgerKeys } from "../../src/ledger/index.js";
import { wakeParkedRows, wakingLedger } from "../../src/worker/budget-wake.js";
import { type ReconcileDeps, reconcileBatch } from "../../src/worker/reconcile.js";
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

const parkedKey = () => ledgerKeys(ctx.prefix).parked("b");
const parked = () => ctx.redis.zrange(parkedKey(), 0, -1);

const submitJobIds = () => liveSubmitJobIds(ctx);

/** Ten rows of 8 credits, a budget of 24: three reserve, seven park. */
const tenRowsThreeFit = () => rowsAskingBudget(ctx.ledger, 10, 24);

describe("parked rows", () => {
  it("woken, get their jobs at the batch's priority, as their first jobs had (a job without one runs first)", async () => {
    await tenRowsThreeFit();
    await ctx.redis.hset(ledgerKeys(ctx.prefix).batch("b"), "priority", 7);
    await ctx.ledger.setBudget("b", 40);
    const added: unknown[] = [];
    const queues = {
      addSubmit: async (data: unknown, options?: unknown) => void added.push([data, options]),
    };
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues }, "b")).toBe(2);
    expect(added).toEqual([
      [{ batch: "b", rowId: "r-04", resubmit: 0 }, { priority: 7 }],
      [{ batch: "b", rowId: "r-05", resubmit: 0 }, { priority: 7 }],
    ]);
  });

  it("park in manifest order, cost no job, and wake as many as the budget holds", async () => {
    await tenRowsThreeFit();
    expect(await parked()).toEqual(ids(10).slice(3));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 7, creditsReserved: 24 });
    // Parked twice (a job re-run, an old delayed job) is parked once.
    expect(await ctx.ledger.reserveBudget("b", "r-05", 8)).toBe("over-budget");
    expect(await parked()).toHaveLength(7);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 7 });

    // No room: nothing wakes.
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(0);
    expect(await submitJobIds()).toEqual([]);

    // 16 more credits: exactly two rows, the first two parked, each with its reservation.
    await ctx.ledger.setBudget("b", 40);
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(2);
    expect(await submitJobIds()).toEqual(["b/r-04", "b/r-05"]);
    expect(await parked()).toEqual(ids(10).slice(5));
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 5, creditsReserved: 40 });
    expect(await ctx.ledger.getRow("b", "r-04")).toMatchObject({ creditsReserved: 8, waitingBudget: false });
    // The woken row's job reserves nothing more: it holds its reservation already.
    expect(await ctx.ledger.reserveBudget("b", "r-04", 8)).toBe("reserved");
    expect((await ctx.ledger.getBatch("b"))!.creditsReserved).toBe(40);

    // A released reservation (a row failed without a create) wakes one.
    expect(await ctx.ledger.releaseReservation("b", "r-01")).toBe(8);
    await ctx.ledger.transition("b", "r-01", { from: ["queued"], to: "failed" });
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(1);
    expect(await parked()).toEqual(ids(10).slice(6));

    // No budget: every parked row wakes.
    await ctx.ledger.setBudget("b", null);
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(4);
    expect(await parked()).toEqual([]);
    expect(await ctx.redis.exists(parkedKey())).toBe(0);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 0, creditsReserved: 72 });
    expect(await submitJobIds()).toHaveLength(7);
  });

  /** The worker's waking ledger over one that counts its wakes, and what it warned. */
  function countingWakes() {
    const seen = { wakes: 0, warnings: [] as unknown[] };
    const counted = {
      ...ctx.ledger,
      wakeParked: (...args: Parameters<typeof ctx.ledger.wakeParked>) => {
        seen.wakes += 1;
        return ctx.ledger.wakeParked(...args);
      },
    };
    const ledger = wakingLedger(counted, ctx.queues, { warn: (o: unknown) => seen.warnings.push(o) });
    return { ledger, seen };
  }

  it("wakes after a settle or a release only when the batch has parked rows (no read otherwise)", async () => {
    const { ledger, seen } = countingWakes();
    // Three rows, a budget for all: nothing parks, so settles and releases ask for no wake.
    await ctx.ledger.addRows(
      "b",
      ids(3).map((id) => newRow(id)),
      { budget: 24 },
    );
    for (const id of ids(3)) expect(await ledger.reserveBudget("b", id, 8)).toBe("reserved");
    await ctx.ledger.transition("b", "r-01", { to: "submitted", addTaskId: "t1" });
    expect(await ledger.settleCredits("b", "r-01", 4)).toBe("settled");
    expect(await ledger.releaseReservation("b", "r-02")).toBe(8);
    expect(seen.wakes).toBe(0);
    // Two more rows over the budget park; a settle below the estimate wakes what now fits.
    await ctx.ledger.addRows(
      "b",
      ["r-04", "r-05"].map((id) => newRow(id)),
    );
    expect(await ledger.reserveBudget("b", "r-02", 8)).toBe("reserved");
    expect(await ledger.reserveBudget("b", "r-04", 8)).toBe("over-budget");
    expect(await ledger.reserveBudget("b", "r-05", 8)).toBe("over-budget");
    expect(await parked()).toEqual(["r-04", "r-05"]);
    await ctx.ledger.transition("b", "r-02", { to: "submitted", addTaskId: "t2" });
    // Spent 4 + 0 of 24, reserved 8 (r-03): room for one row of 8 and a bit.
    expect(await ledger.settleCredits("b", "r-02", 0)).toBe("settled");
    expect(seen.wakes).toBe(1);
    expect(await parked()).toEqual(["r-05"]);
    expect(await submitJobIds()).toEqual(["b/r-04"]);
    // A release with a row still parked wakes it; a repeated settle (nothing settled) does not ask.
    expect(await ledger.releaseReservation("b", "r-03")).toBe(8);
    expect(seen.wakes).toBe(2);
    expect(await parked()).toEqual([]);
    expect(await ledger.settleCredits("b", "r-02", 0)).toBe("already-settled");
    expect(seen.wakes).toBe(2);
    expect(seen.warnings).toEqual([]);
  });

  it("wakes after a settle sent with a move (the poll's), only when rows are parked and the settle counted", async () => {
    const { ledger, seen } = countingWakes();
    await ctx.ledger.addRows(
      "b",
      ids(2).map((id) => newRow(id)),
      { budget: 8 },
    );
    expect(await ledger.reserveBudget("b", "r-01", 8)).toBe("reserved");
    expect(await ledger.reserveBudget("b", "r-02", 8)).toBe("over-budget");
    await ctx.ledger.transition("b", "r-01", { to: "submitted", addTaskId: "t1" });
    const toArchiving = {
      from: ["submitted" as const],
      to: "archiving" as const,
      settle: { spent: 0, taskId: "t1" },
    };
    expect(await ledger.transition("b", "r-01", toArchiving)).toMatchObject({
      settled: "settled",
      parked: true,
    });
    expect(seen.wakes).toBe(1);
    expect(await parked()).toEqual([]);
    expect(await submitJobIds()).toContain("b/r-02");
    // Sent again: nothing settled, no wake asked.
    expect(await ledger.transition("b", "r-01", toArchiving)).toMatchObject({
      ok: false,
      settled: "already-settled",
    });
    expect(seen.wakes).toBe(1);
  });

  it("wakes in pages, in manifest order, passing a row that does not fit (cheaper rows behind it go, in this page or a later one)", async () => {
    await ctx.ledger.addRows(
      "b",
      [
        newRow("a", { estimatedCredits: 4 }),
        newRow("b", { estimatedCredits: 10 }),
        newRow("c", { estimatedCredits: 2 }),
        newRow("d", { estimatedCredits: 4 }),
      ],
      {
        budget: 4,
      },
    );
    for (const id of ["a", "b", "c", "d"])
      await ctx.ledger.reserveBudget("b", id, id === "a" || id === "d" ? 4 : id === "b" ? 10 : 2);
    expect(await parked()).toEqual(["b", "c", "d"]);
    await ctx.ledger.setBudget("b", 10);
    // 6 of room, a page of one: "b" (10) does not fit, and the walk goes on to the next page.
    const first = await ctx.ledger.wakeParked("b", { max: 1 });
    expect(first.woken).toEqual([]);
    expect(first.next).toBeDefined();
    expect(
      await ctx.ledger.wakeParked("b", { max: 1, ...(first.next ? { from: first.next } : {}) }),
    ).toMatchObject({
      woken: [{ rowId: "c", resubmit: 0 }],
    });
    await ctx.ledger.setBudget("b", 4);
    await ctx.ledger.releaseReservation("b", "c");
    await ctx.ledger.transition("b", "c", { from: ["queued"], to: "failed" });
    await ctx.ledger.setBudget("b", 10);
    // The whole set in one page: "b" is passed, "d" (4) fits behind it.
    expect(await ctx.ledger.wakeParked("b")).toEqual({ woken: [{ rowId: "d", resubmit: 0 }] });
    expect(await parked()).toEqual(["b"]);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ creditsReserved: 8, waitingBudget: 1 });
    await ctx.ledger.setBudget("b", 18);
    // 10 of room, one row per call: "b" (10) fits now, and the set ends with it.
    expect(await ctx.ledger.wakeParked("b", { max: 1 })).toEqual({ woken: [{ rowId: "b", resubmit: 0 }] });
    expect(await ctx.ledger.wakeParked("b", { max: 1 })).toEqual({ woken: [] });
    expect((await ctx.ledger.getBatch("b"))!.creditsReserved).toBe(18);
  });

  it("cheap rows parked behind more than a page of dear ones are woken when the room holds them (a raise, a settle below the estimate)", async () => {
    // 205 rows of 20 credits, then 5 of 4; a budget of 12: every row parks but three of 4.
    const dear = Array.from({ length: 205 }, (_, i) =>
      newRow(`d-${String(i).padStart(3, "0")}`, { estimatedCredits: 20 }),
    );
    const cheap = Array.from({ length: 5 }, (_, i) => newRow(`c-${i}`, { estimatedCredits: 4 }));
    await ctx.ledger.addRows("b", [...dear, ...cheap], { budget: 12 });
    for (const row of [...dear, ...cheap]) await ctx.ledger.reserveBudget("b", row.id, row.estimatedCredits);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ creditsReserved: 12, waitingBudget: 207 });
    // Those three run and settle at 2 each: 6 of room, for one row of 4, past the first page.
    for (const id of ["c-0", "c-1", "c-2"]) {
      await ctx.ledger.transition("b", id, { to: "submitted", addTaskId: `t-${id}` });
      await ctx.ledger.settleCredits("b", id, 2, `t-${id}`);
    }
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(1);
    expect(await submitJobIds()).toEqual(["b/c-3"]);
    // The walk read the whole set: it knows the cheapest parked row (c-4, 4); room 2 now holds
    // none, and the next wake reads no row (one page of one, and no further page asked).
    expect(await ctx.redis.hget(ledgerKeys(ctx.prefix).batch("b"), "parkedMin")).toBe("4");
    await ctx.ledger.setBudget("b", 13);
    expect(await ctx.ledger.wakeParked("b", { max: 1 })).toEqual({ woken: [] });
    // A raise to room for c-4: woken past the 205 dear rows.
    await ctx.ledger.setBudget("b", 14);
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(1);
    expect(await submitJobIds()).toEqual(["b/c-3", "b/c-4"]);
    // Only dear rows are left: the bound says so, and a room of 19 reads none of them.
    expect(await ctx.redis.hget(ledgerKeys(ctx.prefix).batch("b"), "parkedMin")).toBe("20");
    await ctx.ledger.setBudget("b", 29);
    expect(await ctx.ledger.wakeParked("b", { max: 1 })).toEqual({ woken: [] });
    // A cheaper row parking brings the bound down: the next wake walks to it.
    await ctx.ledger.addRows("b", [newRow("late", { estimatedCredits: 4 })]);
    await ctx.ledger.setBudget("b", 14);
    expect(await ctx.ledger.reserveBudget("b", "late", 4)).toBe("over-budget");
    expect(await ctx.redis.hget(ledgerKeys(ctx.prefix).batch("b"), "parkedMin")).toBe("4");
    await ctx.ledger.setBudget("b", 18);
    expect(await wakeParkedRows({ ledger: ctx.ledger, queues: ctx.queues }, "b")).toBe(1);
    expect(await submitJobIds()).toContain("b/late");
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ waitingBudget: 205 });
  });

  it("a walk begun while another goes on wakes rows but leaves the set's reading to the first, which learns the bound", async () => {
    await ctx.ledger.addRows(
      "b",
      [
        newRow("a", { estimatedCredits: 8 }),
        newRow("p1", { estimatedCredits: 20 }),
        newRow("p2", { estimatedCredits: 20 }),
        newRow("c", { estimatedCredits: 4 }),
      ],
      { budget: 8 },
    );
    for (const id of ["a", "p1", "p2", "c"])
      await ctx.ledger.reserveBudget("b", id, id === "a" ? 8 : id === "c" ? 4 : 20);
    const parkedMin = () => ctx.redis.hget(ledgerKeys(ctx.prefix).batch("b"), "parkedMin");
    expect(await parkedMin()).toBe("4");
    await ctx.ledger.setBudget("b", 14);
    // Two walks a page at a time, the second begun while the first goes on.
    const a1 = await ctx.ledger.wakeParked("b", { max: 1 });
    const b1 = await ctx.ledger.wakeParked("b", { max: 1 });
    expect(a1.next && b1.next).toBeTruthy();
    const a2 = await ctx.ledger.wakeParked("b", { max: 1, from: a1.next! });
    const a3 = await ctx.ledger.wakeParked("b", { max: 1, from: a2.next! });
    expect(a3).toEqual({ woken: [{ rowId: "c", resubmit: 0 }] });
    // The first walk read the whole set: only rows of 20 are left.
    expect(await parkedMin()).toBe("20");
    const b2 = await ctx.ledger.wakeParked("b", { max: 1, from: b1.next! });
    expect(b2.woken).toEqual([]);
    expect(await parkedMin()).toBe("20");
  });

  it("a batch cancel ran on wakes and feeds nothing (its walk cancels those rows), until retry clears the mark", async () => {
    await tenRowsThreeFit();
    await ctx.ledger.markCancelled("b", true);
    await ctx.ledger.setBudget("b", 80);
    expect(await ctx.ledger.wakeParked("b")).toEqual({ woken: [] });
    expect(await parked()).toHaveLength(7);
    await ctx.ledger.markCancelled("b", false);
    expect((await ctx.ledger.wakeParked("b")).woken).toHaveLength(7);
  });

  it("a parked row that moves on leaves the set; a purge removes it", async () => {
    await tenRowsThreeFit();
    await ctx.ledger.transition("b", "r-04", { from: ["queued"], to: "cancelled" });
    expect(await parked()).toEqual(ids(10).slice(4));
    expect((await ctx.ledger.getBatch("b"))!.waitingBudget).toBe(6);
    // A resubmit lineage is the one the row's job takes next.
    await ctx.ledger.transition("b", "r-05", { addTaskId: "t-lost" });
    await ctx.ledger.setBudget("b", 32);
    expect(await ctx.ledger.wakeParked("b")).toEqual({
      woken: [{ rowId: "r-05", resubmit: 1 }],
    });
    await ctx.ledger.purge("b");
    expect(await ctx.redis.exists(parkedKey())).toBe(0);
  });
});

describe("the reconciler and parked rows", () => {
  const deps = (): ReconcileDeps => reconcileDeps(ctx, clock, 3);

  it("gives no job to a parked row, and wakes the parked rows the budget holds", async () => {
    await tenRowsThreeFit();
    // The three rows that reserved have their jobs (still queued: their creates are on the way).
    for (const id of ids(3)) await ctx.queues.addSubmit({ batch: "b", rowId: id, resubmit: 0 });
    now += 2 * MINUTE;
    // Parked rows are left out unread: only the three with jobs are looked at.
    expect(await reconcileBatch(deps(), "b")).toEqual({ batch: "b", checked: 3, requeued: 0, failed: 0 });
    expect(await submitJobIds()).toEqual(ids(3).map((id) => `b/${id}`));
    expect(await parked()).toHaveLength(7);

    // A budget raised without a wake (the waker died, or an old client set it): the sweep wakes.
    await ctx.ledger.setBudget("b", 48);
    const report = await reconcileBatch(deps(), "b");
    expect(report).toMatchObject({ woken: 3, requeued: 0, failed: 0 });
    expect(await submitJobIds()).toEqual(ids(6).map((id) => `b/${id}`));
    expect(await parked()).toEqual(ids(10).slice(6));
    expect((await ctx.ledger.getBatch("b"))!.repaired ?? 0).toBe(0);
  });

  it("cancels the parked rows of a batch `cancel` marked (its walk cut short), adding no job; refuses once the mark is lifted", async () => {
    await tenRowsThreeFit();
    for (const id of ids(3)) await ctx.queues.addSubmit({ batch: "b", rowId: id, resubmit: 0 });
    await ctx.ledger.markCancelled("b", true);
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ cancelled: 7, requeued: 0, failed: 0 });
    expect(await submitJobIds()).toEqual(ids(3).map((id) => `b/${id}`));
    expect(await parked()).toEqual([]);
    expect(await ctx.ledger.getBatch("b")).toMatchObject({ queued: 3, cancelled: 7, waitingBudget: 0 });
    expect((await ctx.ledger.getBatch("b"))!.repaired ?? 0).toBe(0);

    // A row whose submit job BullMQ gave up on (no create on the wire) is cancelled too, not
    // failed (a failed row invites a retry, which would lift the cancel), its reservation back.
    // What the queue holds after a final failure whose ledger write was lost: the job, in `failed`.
    await ctx.redis.lrem(ctx.queues.queues.submit.toKey("wait"), 0, "b/r-02");
    await ctx.redis.zadd(ctx.queues.queues.submit.toKey("failed"), now, "b/r-02");
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ cancelled: 1 });
    expect(await ctx.ledger.getRow("b", "r-02")).toMatchObject({ status: "cancelled", creditsReserved: 0 });

    // One whose job died with its create on the wire: cancelled, its reservation kept as uncertain
    // (KIE may have made and charged the task), counted once, as `cancel` would have.
    const wire = await ctx.queues.queues.submit.getJob("b/r-03");
    await wire!.updateData({ batch: "b", rowId: "r-03", resubmit: 0, creating: now });
    await ctx.redis.lrem(ctx.queues.queues.submit.toKey("wait"), 0, "b/r-03");
    await ctx.redis.zadd(ctx.queues.queues.submit.toKey("failed"), now, "b/r-03");
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ cancelled: 1 });
    expect(await ctx.ledger.getRow("b", "r-03")).toMatchObject({
      status: "cancelled",
      creditsReserved: 0,
      creditsUncertain: 8,
      uncertain: 1,
    });
    expect(await ctx.ledger.getBatch("b")).toMatchObject({
      creditsReserved: 8, // r-01's, its job live
      creditsUncertain: 8,
      uncertain: 1,
    });

    // The move is made only while the mark is on: a `retry` (or an append) that lifted it between
    // the sweep's read of the batch and the move leaves the row as it is.
    await ctx.ledger.markCancelled("b", false);
    const refused = await ctx.ledger.transition("b", "r-01", {
      from: ["queued"],
      to: "cancelled",
      ifBatchCancelled: true,
    });
    expect(refused.ok).toBe(false);
    expect(refused.row?.status).toBe("queued");
  });

  it("gives a job to a row marked waiting by an older version (not parked, its delayed job lost)", async () => {
    await tenRowsThreeFit();
    for (const id of ids(3)) await ctx.queues.addSubmit({ batch: "b", rowId: id, resubmit: 0 });
    // What an older version left: the mark, no parked entry, no job.
    await ctx.redis.zrem(parkedKey(), "r-10");
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ checked: 4, requeued: 1 });
    expect(await submitJobIds()).toContain("b/r-10");
  });

  it("gives a job to a woken row whose job add was lost", async () => {
    await tenRowsThreeFit();
    await ctx.ledger.setBudget("b", 32);
    // Woken in the ledger, then the waker died before adding the job.
    expect((await ctx.ledger.wakeParked("b")).woken).toEqual([{ rowId: "r-04", resubmit: 0 }]);
    for (const id of ids(3)) await ctx.queues.addSubmit({ batch: "b", rowId: id, resubmit: 0 });
    now += 2 * MINUTE;
    expect(await reconcileBatch(deps(), "b")).toMatchObject({ requeued: 1 });
    expect(await submitJobIds()).toContain("b/r-04");
  });
});
