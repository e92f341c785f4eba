import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { budgetFits } from "../../src/ledger/budget.js";
import { createLedger, type Ledger, LedgerError, type NewRow } from "../../src/ledger/index.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: {}, estimatedCredits: 8 };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `r${i}`);

let clients: Redis[];
let prefix: string;
let ledger: Ledger;

beforeAll(() => {
  clients = [testRedis(), testRedis(), testRedis(), testRedis()];
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit()));
});
beforeEach(() => {
  prefix = uniquePrefix();
  ledger = createLedger(clients[0]!, { prefix });
});
afterEach(async () => {
  await cleanupPrefix(clients[0]!, prefix);
});

describe("reserveBudget", () => {
  it("never lets concurrent reservers past the budget: 20 reservations of 8 against 50 make exactly 6", async () => {
    await ledger.addRows("b1", ids(20).map(newRow), { budget: 50 });
    const ledgers = clients.map((c) => createLedger(c, { prefix }));
    const outcomes = await Promise.all(
      ids(20).map((id, i) => ledgers[i % ledgers.length]!.reserveBudget("b1", id, 8)),
    );
    expect(outcomes.filter((o) => o === "reserved")).toHaveLength(6);
    expect(outcomes.filter((o) => o === "over-budget")).toHaveLength(14);
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 48, waitingBudget: 14 });
    let waiting = 0;
    let held = 0;
    for await (const row of ledger.rows("b1")) {
      if (row.waitingBudget) waiting += 1;
      held += row.creditsReserved;
    }
    expect({ waiting, held }).toEqual({ waiting: 14, held: 48 });
  });

  it("counts a row waiting for budget once, and stops counting it when it gets room", async () => {
    await ledger.addRows("b1", ids(2).map(newRow), { budget: 10 });
    expect(await ledger.reserveBudget("b1", "r0", 8)).toBe("reserved");
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("over-budget");
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("over-budget");
    expect((await ledger.getBatch("b1"))?.waitingBudget).toBe(1);
    expect((await ledger.getRow("b1", "r1"))?.waitingBudget).toBe(true);
    expect(await ledger.setBudget("b1", 16)).toBe(true);
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("reserved");
    expect(await ledger.getBatch("b1")).toMatchObject({ waitingBudget: 0, creditsReserved: 16, budget: 16 });
    expect((await ledger.getRow("b1", "r1"))?.waitingBudget).toBe(false);
  });

  it("stops counting a waiting row that leaves the queue another way (cancelled)", async () => {
    await ledger.addRows("b1", ids(2).map(newRow), { budget: 8 });
    await ledger.reserveBudget("b1", "r0", 8);
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("over-budget");
    const cancelled = await ledger.transition("b1", "r1", { from: ["queued"], to: "cancelled" });
    expect(cancelled.row?.waitingBudget).toBe(false);
    expect((await ledger.getBatch("b1"))?.waitingBudget).toBe(0);
  });

  it("refuses a row that already left the queue without counting it as waiting (nothing would undo it)", async () => {
    await ledger.addRows("b1", ids(2).map(newRow), { budget: 8 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r1", { from: ["queued"], to: "cancelled" });
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("over-budget");
    expect((await ledger.getBatch("b1"))?.waitingBudget).toBe(0);
    expect((await ledger.getRow("b1", "r1"))?.waitingBudget).toBe(false);
  });

  it("is idempotent per row: a retried submit does not reserve twice", async () => {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.reserveBudget("b1", "r0", 8);
    expect((await ledger.getBatch("b1"))?.creditsReserved).toBe(8);
    expect((await ledger.getRow("b1", "r0"))?.creditsReserved).toBe(8);
  });

  it("records reservations without a budget, so status shows credits in flight", async () => {
    await ledger.addRows("b1", ids(2).map(newRow));
    expect(await ledger.reserveBudget("b1", "r0", 7)).toBe("no-budget");
    expect(await ledger.reserveBudget("b1", "r1", 6)).toBe("no-budget");
    expect((await ledger.getBatch("b1"))?.creditsReserved).toBe(13);
  });

  it("counts spent credits against the budget", async () => {
    await ledger.addRows("b1", ids(3).map(newRow), { budget: 20 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.settleCredits("b1", "r0", 8);
    await ledger.reserveBudget("b1", "r1", 8);
    expect(await ledger.reserveBudget("b1", "r2", 8)).toBe("over-budget");
    expect(await ledger.reserveBudget("b1", "r2", 4)).toBe("reserved");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsSpent: 8, creditsReserved: 12 });
  });

  it("throws row_missing for a row the ledger does not have", async () => {
    await ledger.addRows("b1", ids(1).map(newRow));
    await expect(ledger.reserveBudget("b1", "ghost", 8)).rejects.toBeInstanceOf(LedgerError);
    await expect(ledger.settleCredits("b1", "ghost", 8)).rejects.toMatchObject({ code: "row_missing" });
    await expect(ledger.releaseReservation("nope", "r0")).rejects.toMatchObject({ code: "row_missing" });
  });
});

describe("settleCredits and releaseReservation", () => {
  it("moves the reservation to spent once per task, however often it is called", async () => {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    const settles = await Promise.all([1, 2, 3].map(() => ledger.settleCredits("b1", "r0", 3.5)));
    expect(settles.sort()).toEqual(["already-settled", "already-settled", "settled"]);
    expect(await ledger.settleCredits("b1", "r0", 3.5, "task-1")).toBe("already-settled");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 0, creditsSpent: 3.5 });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ creditsReserved: 0, creditsSpent: 3.5 });
  });

  it("counts a known task's uncertain charge once, and takes it back when the task is settled after all", async () => {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    // Unknown to KIE past the grace, then polled again by `retry` and still unknown.
    expect(await ledger.keepUncertain("b1", "r0", 8, "task-1")).toBe(8);
    expect(await ledger.keepUncertain("b1", "r0", 8, "task-1")).toBe(0);
    expect(await ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 0,
      creditsUncertain: 8,
      uncertain: 1,
    });
    // Found after all and settled: its charge is known, no longer uncertain.
    expect(await ledger.settleCredits("b1", "r0", 6, "task-1")).toBe("settled");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsUncertain: 0, creditsSpent: 6 });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ creditsUncertain: 0, creditsSpent: 6 });
  });

  it("counts a create attempt whose task is unknown once, whoever counts it (a cancel, then the job's next run, then the reconciler)", async () => {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    const attempt = { lineage: 0, mark: 1_700_000_000_123 };
    expect(await ledger.keepUncertain("b1", "r0", 0, undefined, attempt)).toBe(8);
    expect(await ledger.keepUncertain("b1", "r0", 0, undefined, attempt)).toBe(0);
    expect(await ledger.keepUncertain("b1", "r0", 0, undefined, attempt)).toBe(0);
    expect(await ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 0,
      creditsUncertain: 8,
      uncertain: 1,
    });
    // The next attempt of the same lineage (another mark) is another attempt: counted.
    await ledger.reserveBudget("b1", "r0", 8);
    expect(
      await ledger.keepUncertain("b1", "r0", 0, undefined, { lineage: 0, mark: 1_700_000_999_000 }),
    ).toBe(8);
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsUncertain: 16, uncertain: 2 });
  });

  it("counts nothing for an attempt whose task was recorded since (a cancel that read the row before the record): that task's settle accounts for it", async () => {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    expect(
      await ledger.keepUncertain("b1", "r0", 0, undefined, { lineage: 0, mark: 1_700_000_000_123 }),
    ).toBe(0);
    expect(await ledger.settleCredits("b1", "r0", 6, "task-1")).toBe("settled");
    expect(await ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 0,
      creditsUncertain: 0,
      creditsSpent: 6,
      uncertain: 0,
    });
  });

  it("never counts a settled task as uncertain (a retry that finds it forgotten by KIE)", async () => {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    expect(await ledger.settleCredits("b1", "r0", 6, "task-1")).toBe("settled");
    expect(await ledger.keepUncertain("b1", "r0", 8, "task-1")).toBe(0);
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsUncertain: 0, uncertain: 0, creditsSpent: 6 });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ creditsUncertain: 0, creditsSpent: 6 });
    // A task that was never settled is still counted.
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { addTaskId: "task-2", incr: { resubmits: 1 } });
    expect(await ledger.keepUncertain("b1", "r0", 8, "task-2")).toBe(8);
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsUncertain: 8, uncertain: 1, creditsSpent: 6 });
  });

  /** task-1 unknown past the grace: counted uncertain, the row queued again, its next attempt reserved. */
  async function resubmittedAfterUncertain() {
    await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    await ledger.keepUncertain("b1", "r0", 8, "task-1");
    await ledger.transition("b1", "r0", { to: "queued", incr: { resubmits: 1 } });
    expect(await ledger.reserveBudget("b1", "r0", 8)).toBe("reserved");
  }

  it("a late settle of a task the row has left adds its cost and leaves the new task's reservation held", async () => {
    await resubmittedAfterUncertain();
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-2" });
    // A stale poll run finds task-1 after all.
    expect(await ledger.settleCredits("b1", "r0", 6, "task-1")).toBe("settled");
    expect(await ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 8,
      creditsSpent: 6,
      creditsUncertain: 0,
    });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ creditsReserved: 8, creditsSpent: 6 });
    // task-2's own settle releases its reservation.
    expect(await ledger.settleCredits("b1", "r0", 7, "task-2")).toBe("settled");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 0, creditsSpent: 13 });
  });

  it("a late settle while the row is queued again (its next attempt reserved, not yet recorded) leaves that reservation held", async () => {
    await resubmittedAfterUncertain();
    // task-1 still reads as the row's current task: the stale run's settle must not take attempt 2's credits.
    expect(await ledger.settleCredits("b1", "r0", 6, "task-1")).toBe("settled");
    expect(await ledger.getRow("b1", "r0")).toMatchObject({
      status: "queued",
      creditsReserved: 8,
      creditsSpent: 6,
    });
    expect(await ledger.getBatch("b1")).toMatchObject({
      creditsReserved: 8,
      creditsSpent: 6,
      creditsUncertain: 0,
    });
  });

  it("settles a resubmitted row's second task on top of the first", async () => {
    await ledger.addRows("b1", ids(1).map(newRow));
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    await ledger.settleCredits("b1", "r0", 8, "task-1");
    await ledger.reserveBudget("b1", "r0", 8);
    await ledger.transition("b1", "r0", { addTaskId: "task-2", incr: { resubmits: 1 } });
    expect(await ledger.settleCredits("b1", "r0", 6)).toBe("settled");
    expect(await ledger.settleCredits("b1", "r0", 6, "task-2")).toBe("already-settled");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsSpent: 14, creditsReserved: 0, resubmits: 1 });
  });

  describe("a transition's settle (the poll's settle and its move to archiving, one call)", () => {
    const toArchiving = (taskId: string, spent: number) =>
      ledger.transition("b1", "r0", {
        from: ["submitted", "generating"],
        ifTask: taskId,
        to: "archiving",
        set: { completedAt: 5 },
        settle: { spent, taskId },
      });

    it("settles once per task and moves the row in the same step; sent again, it neither settles nor moves twice", async () => {
      await ledger.addRows("b1", ids(2).map(newRow), { budget: 100 });
      await ledger.reserveBudget("b1", "r0", 8);
      await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
      const first = await toArchiving("task-1", 6);
      expect(first).toMatchObject({ ok: true, settled: "settled", parked: false });
      expect(first.row).toMatchObject({ status: "archiving", creditsReserved: 0, creditsSpent: 6 });
      // A reply lost and the call sent again: the task is not paid twice, the row moves no further.
      expect(await toArchiving("task-1", 6)).toMatchObject({ ok: false, settled: "already-settled" });
      expect(await ledger.settleCredits("b1", "r0", 6, "task-1")).toBe("already-settled");
      expect(await ledger.getBatch("b1")).toMatchObject({
        creditsReserved: 0,
        creditsSpent: 6,
        archiving: 1,
      });
    });

    it("settles even when the move is refused: a row cancelled while its task ran is paid, and stays cancelled", async () => {
      await ledger.addRows("b1", ids(1).map(newRow), { budget: 100 });
      await ledger.reserveBudget("b1", "r0", 8);
      await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
      await ledger.transition("b1", "r0", { to: "cancelled" });
      expect(await toArchiving("task-1", 7)).toMatchObject({ ok: false, settled: "settled" });
      // As settleCredits leaves it: the cancelled row's reservation is its submit job's to give back.
      expect(await ledger.getRow("b1", "r0")).toMatchObject({
        status: "cancelled",
        creditsSpent: 7,
        creditsReserved: 8,
      });
    });

    it("a stale run's settle of a task the row has left adds its cost, keeps the new attempt's reservation, moves nothing", async () => {
      await resubmittedAfterUncertain();
      await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-2" });
      expect(await toArchiving("task-1", 6)).toMatchObject({ ok: false, settled: "settled" });
      expect(await ledger.getRow("b1", "r0")).toMatchObject({
        status: "submitted",
        creditsReserved: 8,
        creditsSpent: 6,
      });
      expect(await ledger.getBatch("b1")).toMatchObject({ creditsUncertain: 0 });
    });

    it("says when rows are parked over the budget (the settle may have made room), and nothing of a missing row", async () => {
      await ledger.addRows("b1", ids(2).map(newRow), { budget: 8 });
      expect(await ledger.reserveBudget("b1", "r0", 8)).toBe("reserved");
      expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("over-budget");
      await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
      expect(await toArchiving("task-1", 6)).toMatchObject({ ok: true, settled: "settled", parked: true });
      const missing = await ledger.transition("b1", "ghost", { to: "archiving", settle: { spent: 6 } });
      expect(missing).toMatchObject({ ok: false, row: undefined });
      expect(missing.settled).toBeUndefined();
      await expect(ledger.transition("b1", "r0", { settle: { spent: -1 } })).rejects.toMatchObject({
        code: "invalid_value",
      });
    });
  });

  it("releases a reservation that bought nothing, once", async () => {
    await ledger.addRows("b1", ids(2).map(newRow), { budget: 10 });
    await ledger.reserveBudget("b1", "r0", 8);
    expect(await ledger.releaseReservation("b1", "r0")).toBe(8);
    expect(await ledger.releaseReservation("b1", "r0")).toBe(0);
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 0, creditsSpent: 0 });
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("reserved");
  });

  it("a budget lowered below what the batch holds stops rows already holding a reservation: theirs goes back, they wait; a row within it goes on", async () => {
    await ledger.addRows("b1", ids(3).map(newRow), { budget: 100 });
    for (const id of ids(3)) expect(await ledger.reserveBudget("b1", id, 8)).toBe("reserved");
    // Asking again while holding is a no-op.
    expect(await ledger.reserveBudget("b1", "r0", 8)).toBe("reserved");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 24 });
    await ledger.setBudget("b1", 16);
    // 24 held against 16: the first to ask again gives its 8 back and waits; then 16 fit.
    expect(await ledger.reserveBudget("b1", "r0", 8)).toBe("over-budget");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 16, waitingBudget: 1 });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ creditsReserved: 0, waitingBudget: true });
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("reserved");
    expect(await ledger.reserveBudget("b1", "r2", 8)).toBe("reserved");
    expect(await ledger.getBatch("b1")).toMatchObject({ creditsReserved: 16 });
    // A row cancelled meanwhile keeps the old answer (its submit job gives back what it holds
    // itself, on its own path, not through a handler a crash could skip).
    await ledger.setBudget("b1", 8);
    await ledger.transition("b1", "r1", { from: ["queued"], to: "cancelled" });
    expect(await ledger.reserveBudget("b1", "r1", 8)).toBe("reserved");
    expect(await ledger.getRow("b1", "r1")).toMatchObject({ creditsReserved: 8 });
  });

  it("keeps fractional credits exact enough to release back to zero", async () => {
    await ledger.addRows("b1", ids(3).map(newRow));
    for (const [id, credits] of [
      ["r0", 0.1],
      ["r1", 0.2],
      ["r2", 0.3],
    ] as const) {
      await ledger.reserveBudget("b1", id, credits);
    }
    for (const id of ids(3)) await ledger.releaseReservation("b1", id);
    expect((await ledger.getBatch("b1"))?.creditsReserved).toBeCloseTo(0, 12);
  });

  it("a budget met exactly by fractional credits admits the last of them (0.3 - 0.1 is below 0.2 in floats), and not a credit more", async () => {
    await ledger.addRows("b1", ids(3).map(newRow), { budget: 0.3 });
    expect(await ledger.reserveBudget("b1", "r0", 0.1)).toBe("reserved");
    expect(await ledger.reserveBudget("b1", "r1", 0.2)).toBe("reserved");
    expect(await ledger.reserveBudget("b1", "r2", 0.001)).toBe("over-budget");
  });
});

describe("budgetFits (the scripts' budget arithmetic, as the feed's no-script answer reads it)", () => {
  const fields = (
    budget: string | null,
    spent: string | null,
    reserved: string | null,
    uncertain: string | null,
  ) => ({
    budget,
    spent,
    reserved,
    uncertain,
  });
  it("a batch without a budget fits anything; spent, reserved and uncertain all count; float sums get the same slack", () => {
    expect(budgetFits(fields(null, "100", null, null), 5)).toBe(true);
    expect(budgetFits(fields("10", "4", "3", "3"), 0)).toBe(true);
    expect(budgetFits(fields("10", "4", "3", "3"), 0.5)).toBe(false);
    expect(budgetFits(fields("10", "4", "3", "3.5"), 0)).toBe(false);
    expect(budgetFits(fields("0.6", String(0.1 + 0.2), null, null), 0.3)).toBe(true);
    expect(budgetFits(fields("0.6", String(0.1 + 0.2), null, null), 0.301)).toBe(false);
  });
});

describe("setBudget", () => {
  it("sets, replaces and removes a budget, and refuses an unknown batch", async () => {
    await ledger.addRows("b1", ids(1).map(newRow));
    expect(await ledger.setBudget("b1", 40)).toBe(true);
    expect((await ledger.getBatch("b1"))?.budget).toBe(40);
    expect(await ledger.setBudget("b1", null)).toBe(true);
    expect((await ledger.getBatch("b1"))?.budget).toBeUndefined();
    expect(await ledger.setBudget("nope", 10)).toBe(false);
    expect(await ledger.getBatch("nope")).toBeUndefined();
    await expect(ledger.setBudget("b1", -1)).rejects.toMatchObject({ code: "invalid_value" });
  });
});
