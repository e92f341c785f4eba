import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type BatchSummary,
  createLedger,
  type Ledger,
  type NewRow,
  STATUSES,
  type Status,
} from "../../src/ledger/index.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: {}, estimatedCredits: 8 };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `r${i}`);

function statusSum(batch: BatchSummary): number {
  return STATUSES.reduce((sum, status) => sum + batch[status], 0);
}

let clients: Redis[];
let prefix: string;
let ledger: Ledger;

beforeAll(() => {
  // Several connections, so concurrent calls really interleave inside Redis.
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

describe("transition", () => {
  it("moves a row and its batch's counters together", async () => {
    await ledger.addRows("b1", ids(3).map(newRow));
    const result = await ledger.transition("b1", "r1", {
      from: ["queued"],
      to: "submitted",
      set: { submittedAt: 5 },
    });
    expect(result.ok).toBe(true);
    expect(result.finished).toBe(false);
    expect(result.row).toMatchObject({ id: "r1", status: "submitted", submittedAt: 5 });
    expect(await ledger.getBatch("b1")).toMatchObject({ total: 3, queued: 2, submitted: 1 });
  });

  it("changes nothing when the row's status is not in `from`", async () => {
    await ledger.addRows("b1", [newRow("r0")]);
    await ledger.transition("b1", "r0", { to: "generating" });
    const before = await ledger.getRow("b1", "r0");
    const result = await ledger.transition("b1", "r0", {
      from: ["queued", "submitted"],
      to: "cancelled",
      set: { error: "should not be written" },
      incr: { uncertain: 1 },
      addTaskId: "t-never",
    });
    expect(result.ok).toBe(false);
    expect(result.row?.status).toBe("generating");
    expect(await ledger.getRow("b1", "r0")).toEqual(before);
    expect(await ledger.getBatch("b1")).toMatchObject({ generating: 1, cancelled: 0, uncertain: 0 });
    expect((await ledger.transition("b1", "r0", { from: [], to: "failed" })).ok).toBe(false);
  });

  it("with rowOnRefusal, answers the row only when the move is refused; the move itself is the same", async () => {
    await ledger.addRows("b1", ids(1).map(newRow));
    const moved = await ledger.transition("b1", "r0", {
      from: ["queued"],
      to: "submitted",
      addTaskId: "t-1",
      rowOnRefusal: true,
    });
    expect(moved).toMatchObject({ ok: true, row: undefined, finished: false });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ status: "submitted", taskId: "t-1" });
    const refused = await ledger.transition("b1", "r0", {
      from: ["queued"],
      to: "failed",
      rowOnRefusal: true,
    });
    expect(refused.ok).toBe(false);
    expect(refused.row).toMatchObject({
      id: "r0",
      status: "submitted",
      taskIds: ["t-1"],
      prompt: "prompt r0",
    });
    // Counters and the set/incr arguments after the new one are read as before.
    const set = await ledger.transition("b1", "r0", {
      to: "generating",
      set: { generatingAt: 5 },
      incr: { resubmits: 1 },
      rowOnRefusal: true,
    });
    expect(set.ok).toBe(true);
    expect(await ledger.getRow("b1", "r0")).toMatchObject({
      status: "generating",
      generatingAt: 5,
      resubmits: 1,
    });
    expect(await ledger.getBatch("b1")).toMatchObject({ total: 1, generating: 1, submitted: 0 });
  });

  it("with ifTask, acts only while that task is the row's current one: a run about a task the row has left changes nothing", async () => {
    await ledger.addRows("b1", ids(1).map(newRow));
    await ledger.transition("b1", "r0", { from: ["queued"], to: "submitted", addTaskId: "t-1" });
    // The row is resubmitted: t-2 is its task now (a stale poll of t-1 still runs somewhere).
    await ledger.transition("b1", "r0", { from: ["submitted"], to: "queued", incr: { resubmits: 1 } });
    await ledger.transition("b1", "r0", { from: ["queued"], to: "submitted", addTaskId: "t-2" });
    const before = await ledger.getRow("b1", "r0");
    const stale = await ledger.transition("b1", "r0", {
      from: ["submitted", "generating"],
      ifTask: "t-1",
      to: "queued",
      incr: { resubmits: 1 },
      set: { error: "t-1 failed" },
      rowOnRefusal: true,
    });
    expect(stale.ok).toBe(false);
    expect(stale.row).toMatchObject({ status: "submitted", taskId: "t-2" });
    expect(await ledger.getRow("b1", "r0")).toEqual(before);
    expect(await ledger.getBatch("b1")).toMatchObject({ submitted: 1, queued: 0 });
    // The current task's own run moves it, its set and incr arguments read as before.
    const current = await ledger.transition("b1", "r0", {
      from: ["submitted"],
      ifTask: "t-2",
      to: "generating",
      set: { generatingAt: 7 },
      incr: { resubmits: 1 },
    });
    expect(current.ok).toBe(true);
    expect(await ledger.getRow("b1", "r0")).toMatchObject({
      status: "generating",
      generatingAt: 7,
      resubmits: 2,
    });
  });

  it("refuses a resubmit (in flight back to queued) in a batch cancel ran on; a retry's move of a failed row goes", async () => {
    await ledger.addRows("b1", ids(2).map(newRow));
    await ledger.transition("b1", "r0", { to: "generating", addTaskId: "t0" });
    await ledger.transition("b1", "r1", { to: "failed" });
    await ledger.markCancelled("b1", true);
    const resubmit = await ledger.transition("b1", "r0", { from: ["submitted", "generating"], to: "queued" });
    expect(resubmit.ok).toBe(false);
    expect((await ledger.getRow("b1", "r0"))?.status).toBe("generating");
    expect((await ledger.transition("b1", "r1", { from: ["failed"], to: "queued" })).ok).toBe(true);
    // Without the mark, the resubmit goes.
    await ledger.markCancelled("b1", false);
    expect((await ledger.transition("b1", "r0", { from: ["generating"], to: "queued" })).ok).toBe(true);
  });

  it("answers not ok and undefined for a row that does not exist", async () => {
    await ledger.addRows("b1", [newRow("r0")]);
    expect(await ledger.transition("b1", "ghost", { to: "failed" })).toEqual({
      ok: false,
      row: undefined,
      finished: false,
    });
    expect(await ledger.transition("no-batch", "r0", { to: "failed" })).toMatchObject({ ok: false });
    expect(await ledger.getBatch("no-batch")).toBeUndefined();
  });

  it("keeps the per-status counts summing to total under 200 concurrent transitions", async () => {
    const rowIds = ids(50);
    await ledger.addRows("race", rowIds.map(newRow));
    const ledgers = clients.map((c) => createLedger(c, { prefix }));
    type Op = { row: string; kind: "submit" | "cancel" | "generate" | "fail" };
    const ops: Op[] = rowIds.flatMap((row) =>
      (["submit", "cancel", "generate", "fail"] as const).map((kind) => ({ row, kind })),
    );
    // Deterministic shuffle, so a failure can be replayed.
    let seed = 7;
    for (let i = ops.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [ops[i], ops[j]] = [ops[j]!, ops[i]!];
    }
    const moves: Record<Op["kind"], { from: Status[]; to: Status }> = {
      submit: { from: ["queued"], to: "submitted" },
      cancel: { from: ["queued"], to: "cancelled" },
      generate: { from: ["submitted"], to: "generating" },
      fail: { from: ["submitted", "generating"], to: "failed" },
    };
    const results = await Promise.all(
      ops.map((op, i) => ledgers[i % ledgers.length]!.transition("race", op.row, moves[op.kind])),
    );
    expect(results).toHaveLength(200);

    const batch = (await ledger.getBatch("race"))!;
    expect(batch.total).toBe(50);
    expect(statusSum(batch)).toBe(50);
    const tally = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
    for await (const row of ledger.rows("race")) tally[row.status] += 1;
    for (const status of STATUSES) expect(batch[status], status).toBe(tally[status]);
    // Each row left `queued` exactly once: by a submit or by a cancel, never both.
    for (const row of rowIds) {
      const wins = ops.filter(
        (op, i) => op.row === row && results[i]!.ok && ["submit", "cancel"].includes(op.kind),
      );
      expect(wins, row).toHaveLength(1);
    }
    expect(tally.queued).toBe(0);
  });

  it("appends every taskId once and makes the latest current, in the row alone (no task map)", async () => {
    await ledger.addRows("b1", [newRow("r0")]);
    await ledger.transition("b1", "r0", { to: "submitted", addTaskId: "task-1" });
    await ledger.transition("b1", "r0", { addTaskId: "task-1" });
    const resubmitted = await ledger.transition("b1", "r0", {
      to: "submitted",
      addTaskId: "task/2",
      incr: { resubmits: 1, uncertain: 1 },
    });
    expect(resubmitted.row).toMatchObject({
      taskId: "task/2",
      taskIds: ["task-1", "task/2"],
      resubmits: 1,
      uncertain: 1,
    });
    expect(await ledger.getBatch("b1")).toMatchObject({ resubmits: 1, uncertain: 1, submitted: 1 });
    // The row is the task's one record: no taskId -> row entry (the former task map) is written.
    expect(await clients[0]!.exists(`{${prefix}:task:task-1}`, `{${prefix}:task:task/2}`)).toBe(0);
  });

  it("sets and clears flat fields, and records archived images with the first as the location", async () => {
    await ledger.addRows("b1", [newRow("r0")]);
    await ledger.transition("b1", "r0", { to: "failed", set: { error: "timeout" } });
    const retried = await ledger.transition("b1", "r0", {
      from: ["failed"],
      to: "queued",
      set: { error: null },
    });
    expect(retried.row?.error).toBeUndefined();
    const images = [
      { key: "b1/r0.png", location: "s3://bk/b1/r0.png", bytes: 10, sha256: "aa", contentType: "image/png" },
      {
        key: "b1/r0-2.png",
        location: "s3://bk/b1/r0-2.png",
        bytes: 20,
        sha256: "bb",
        contentType: "image/png",
      },
    ];
    const archived = await ledger.transition("b1", "r0", {
      to: "archived",
      set: { images, archivedAt: 99 },
      incr: { creditsSpent: 6.5 },
    });
    expect(archived.row).toMatchObject({ images, location: "s3://bk/b1/r0.png", bytes: 10, sha256: "aa" });
    expect(archived.row?.creditsSpent).toBe(6.5);
    expect((await ledger.getBatch("b1"))?.creditsSpent).toBe(6.5);
    await expect(
      ledger.transition("b1", "r0", { set: { status: "queued" } as unknown as Record<string, never> }),
    ).rejects.toMatchObject({ code: "invalid_value" });
    await expect(
      ledger.transition("b1", "r0", { incr: { total: 1 } as unknown as Record<string, never> }),
    ).rejects.toMatchObject({ code: "invalid_value" });
  });

  it("sets finishedAt when the last row ends, and clears it when a row is retried", async () => {
    await ledger.addRows("b1", ids(3).map(newRow));
    expect((await ledger.transition("b1", "r0", { to: "archived" })).finished).toBe(false);
    expect((await ledger.transition("b1", "r1", { to: "cancelled" })).finished).toBe(false);
    expect((await ledger.transition("b1", "r2", { to: "failed" })).finished).toBe(true);
    expect((await ledger.getBatch("b1"))?.finishedAt).toBeGreaterThan(0);
    await ledger.transition("b1", "r2", { from: ["failed"], to: "queued" });
    expect((await ledger.getBatch("b1"))?.finishedAt).toBeUndefined();
    expect((await ledger.transition("b1", "r2", { to: "archived" })).finished).toBe(true);
  });
});

describe("oldestUnarchived", () => {
  it("names the row waiting longest in archiving, by the provider's completion time", async () => {
    await ledger.addRows("b1", ids(4).map(newRow));
    expect(await ledger.oldestUnarchived("b1")).toBeUndefined();
    await ledger.transition("b1", "r0", { to: "archiving", set: { completedAt: 3_000 } });
    await ledger.transition("b1", "r1", { to: "archiving", set: { completedAt: 1_000 } });
    await ledger.transition("b1", "r2", { to: "archiving", set: { completedAt: 2_000 } });
    expect(await ledger.oldestUnarchived("b1")).toEqual({ rowId: "r1", completedAt: 1_000 });
    await ledger.transition("b1", "r1", { from: ["archiving"], to: "archived" });
    expect(await ledger.oldestUnarchived("b1")).toEqual({ rowId: "r2", completedAt: 2_000 });
    await ledger.transition("b1", "r2", { to: "failed" });
    await ledger.transition("b1", "r0", { to: "archived" });
    expect(await ledger.oldestUnarchived("b1")).toBeUndefined();
  });

  it("uses the time the row entered archiving when the provider gave no completion time", async () => {
    const clocked = createLedger(clients[0]!, { prefix, clock: { now: () => 42_000 } });
    await clocked.addRows("b1", [newRow("r0")]);
    await clocked.transition("b1", "r0", { to: "archiving" });
    expect(await clocked.oldestUnarchived("b1")).toEqual({ rowId: "r0", completedAt: 42_000 });
  });
});
