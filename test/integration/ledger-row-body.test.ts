import { describe, expect, it } from "vitest";
import { createLedger, ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";
import { stateOf } from "../helpers/stage-fakes.js";

/*
 * Issue 10, the compact row record: a row's hash holds only values of at most 64 bytes (Redis's
 * default hash-max-listpack-value, which users' servers keep), so it stays a listpack in every
 * state; the prompt, params, metadata, images, errors and reusedFrom live in the row's body string.
 */

const ctx = ledgerContext();
const DAY = 24 * 3600 * 1000;
const TASK = (n: number) => `${n}`.padStart(32, "f");
const IMAGES = [1, 2].map((n) => ({
  key: `b1/r0-${n}.png`,
  location: `s3://a-bucket-with-a-long-name/some/prefix/b1/r0-${n}.png`,
  bytes: 1_234_567,
  sha256: "ab".repeat(32),
  contentType: "image/png",
}));
const LONG_ERROR = `archive failed: ${"the store answered with something long ".repeat(8)}`;

function newRow(id: string, promptLength: number): NewRow {
  return {
    id,
    line: 2,
    prompt: "p".repeat(promptLength),
    params: { aspect_ratio: "16:9", resolution: "2K", output_format: "png", model: "some-model" },
    metadata: { sku: "A-1", note: "a note" },
    estimatedCredits: 8,
  };
}

async function encoding(batch: string, id: string): Promise<string> {
  return String(await ctx.redis.call("OBJECT", "ENCODING", ledgerKeys(ctx.prefix).row(batch, id)));
}

describe("the row hash stays a listpack", () => {
  it.each([300, 2000])(
    "in every state, with a %i-character prompt, resubmits and long errors",
    async (length) => {
      const { ledger } = ctx;
      await ledger.addRows("b1", [newRow("r0", length), newRow("r1", length)], { budget: 1000 });
      const seen: string[] = [await encoding("b1", "r0")];
      await ledger.reserveBudget("b1", "r0", 8);
      await ledger.transition("b1", "r0", { to: "submitted", addTaskId: TASK(1), taskKey: "k1abcdef" });
      seen.push(await encoding("b1", "r0"));
      // A resubmit: a second task and a long error while the row goes on.
      await ledger.transition("b1", "r0", { set: { error: `${LONG_ERROR}; resubmitted` } });
      await ledger.transition("b1", "r0", {
        addTaskId: TASK(2),
        taskKey: "k2abcdef",
        incr: { resubmits: 1 },
      });
      await ledger.transition("b1", "r0", { to: "generating", set: { generatingAt: 1, error: null } });
      seen.push(await encoding("b1", "r0"));
      await ledger.transition("b1", "r0", { to: "archiving", set: { completedAt: 2 } });
      expect(await ledger.settleCredits("b1", "r0", 8)).toBe("settled");
      expect(await ledger.settleCredits("b1", "r0", 8, TASK(2))).toBe("already-settled");
      await ledger.transition("b1", "r0", { set: { error: LONG_ERROR } });
      seen.push(await encoding("b1", "r0"));
      const reusedFrom = `${"a-batch-name-".repeat(6)}/${"a-row-id-".repeat(6)}`;
      const archived = await ledger.transition("b1", "r0", {
        to: "archived",
        set: { images: IMAGES, archivedAt: 3, reusedFrom, error: null },
      });
      seen.push(await encoding("b1", "r0"));
      await ledger.transition("b1", "r1", { to: "failed", set: { error: LONG_ERROR } });
      seen.push(await encoding("b1", "r1"));
      expect(seen).toEqual(Array(6).fill("listpack"));

      const expected = {
        id: "r0",
        prompt: "p".repeat(length),
        params: newRow("r0", 0).params,
        metadata: newRow("r0", 0).metadata,
        status: "archived",
        taskId: TASK(2),
        taskIds: [TASK(1), TASK(2)],
        taskKeys: { [TASK(1)]: "k1abcdef", [TASK(2)]: "k2abcdef" },
        images: IMAGES,
        location: IMAGES[0]!.location,
        reusedFrom,
        creditsSpent: 8,
        resubmits: 1,
      };
      expect(archived.row).toMatchObject(expected);
      expect(archived.row?.error).toBeUndefined();
      expect(await ledger.getRow("b1", "r0")).toMatchObject(expected);
      expect(await ledger.getRow("b1", "r1")).toMatchObject({ status: "failed", error: LONG_ERROR });
      // The poll's read: the hash alone, every field of the row's state and none of its body's.
      for (const id of ["r0", "r1"]) {
        const state = await ledger.getRowState("b1", id);
        expect(state).toEqual(stateOf((await ledger.getRow("b1", id))!));
        expect(Object.keys(state!)).not.toContain("prompt");
      }
      expect(await ledger.getRowState("b1", "r0")).toMatchObject({
        status: "archived",
        taskId: TASK(2),
        taskIds: [TASK(1), TASK(2)],
        taskKeys: { [TASK(1)]: "k1abcdef", [TASK(2)]: "k2abcdef" },
        creditsSpent: 8,
        resubmits: 1,
      });
      expect(await ledger.getRowState("b1", "nope")).toBeUndefined();
      // No task id stored twice (the current one is `task`, an ordinal; what is kept per task is
      // keyed by it), no settled reservation as "0", and no field or value over 64 bytes.
      const hash = await ctx.redis.hgetall(ledgerKeys(ctx.prefix).row("b1", "r0"));
      const fields = Object.keys(hash);
      expect(fields.filter((field) => field.includes(TASK(2)))).toEqual([`task:${TASK(2)}`]);
      expect(hash).toMatchObject({ task: "2", "k:1": "k1abcdef", "k:2": "k2abcdef", "s:2": "8" });
      expect(
        Object.entries(hash).filter(([f, v]) => Buffer.byteLength(f) > 64 || Buffer.byteLength(v) > 64),
      ).toEqual([]);
      expect(fields).not.toContain("taskId");
      expect(fields).not.toContain("creditsReserved");
      expect(fields).not.toContain("id");
      expect(await ctx.redis.hget(ledgerKeys(ctx.prefix).row("b1", "r0"), "task")).toBe("2");
    },
  );

  it("a parked row woken after resubmits gets the lineage of its tasks", async () => {
    const { ledger } = ctx;
    await ledger.addRows("b1", [newRow("r0", 40)], { budget: 0 });
    await ledger.transition("b1", "r0", { addTaskId: TASK(1) });
    await ledger.transition("b1", "r0", { addTaskId: TASK(2) });
    await ledger.transition("b1", "r0", { addTaskId: TASK(1) });
    // Taken again, the first task is the current one again (as when the row held `taskId`).
    expect(await ledger.getRow("b1", "r0")).toMatchObject({ taskIds: [TASK(1), TASK(2)], taskId: TASK(1) });
    expect(await ledger.reserveBudget("b1", "r0", 8)).toBe("over-budget");
    await ledger.setBudget("b1", 100);
    expect((await ledger.wakeParked("b1", { max: 10 })).woken).toEqual([{ rowId: "r0", resubmit: 2 }]);
  });
});

describe("the row body", () => {
  it("is left as it is when the row is added again (idempotent add-rows)", async () => {
    const { ledger } = ctx;
    await ledger.addRows("b1", [newRow("r0", 300)]);
    const bodyKey = ledgerKeys(ctx.prefix).body("b1", "r0");
    const before = await ctx.redis.get(bodyKey);
    expect(await ledger.addRows("b1", [{ ...newRow("r0", 10), prompt: "other" }])).toEqual([
      "duplicate-queued",
    ]);
    expect(await ctx.redis.get(bodyKey)).toBe(before);
    expect((await ledger.getRow("b1", "r0"))?.prompt).toBe("p".repeat(300));
  });

  it("a row whose body is gone while its hash is still there reads as gone (removed between the reads)", async () => {
    const { ledger } = ctx;
    await ledger.addRows("b1", [newRow("r0", 300), newRow("r1", 300)]);
    // What a purge or an expiry landing between the HGETALL and the GET leaves for the reader.
    await ctx.redis.del(ledgerKeys(ctx.prefix).body("b1", "r0"));
    expect(await ledger.getRow("b1", "r0")).toBeUndefined();
    expect((await ledger.getRow("b1", "r1"))?.prompt).toBe("p".repeat(300));
    // Its state is one key, read in one command: the hash is there, so the row is (the poll then
    // moves it by a script that reads both keys itself).
    expect(await ledger.getRowState("b1", "r0")).toMatchObject({ id: "r0", status: "queued" });
  });

  it("expires with its row, is persisted with it on reopen, and is purged with it", async () => {
    const expiring = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: DAY });
    const keys = ledgerKeys(ctx.prefix);
    await expiring.addRows("b1", [newRow("r0", 300), newRow("r1", 300)]);
    await expiring.transition("b1", "r0", { to: "archived", set: { images: IMAGES } });
    await expiring.transition("b1", "r1", { to: "failed", set: { error: LONG_ERROR } });
    for (const id of ["r0", "r1"]) {
      const [row, body] = [
        await ctx.redis.pexpiretime(keys.row("b1", id)),
        await ctx.redis.pexpiretime(keys.body("b1", id)),
      ];
      expect(row).toBeGreaterThan(0);
      expect(body, id).toBe(row);
    }
    // The body rewritten on an expiring row keeps its expiry (KEEPTTL).
    await expiring.transition("b1", "r0", { set: { error: LONG_ERROR } });
    expect(await ctx.redis.pexpiretime(keys.body("b1", "r0"))).toBe(
      await ctx.redis.pexpiretime(keys.row("b1", "r0")),
    );
    // A retry reopens the batch: row and body persist together.
    await expiring.transition("b1", "r1", { from: ["failed"], to: "queued", set: { error: null } });
    for (const id of ["r0", "r1"]) {
      expect(await ctx.redis.pttl(keys.row("b1", id))).toBe(-1);
      expect(await ctx.redis.pttl(keys.body("b1", id))).toBe(-1);
    }
    expect(await expiring.purge("b1")).toBe(2);
    expect(await ctx.redis.exists(keys.body("b1", "r0"), keys.body("b1", "r1"))).toBe(0);
  });
});

describe("rows written before the body existed", () => {
  it("read from their hash, and keep being written there", async () => {
    const { ledger } = ctx;
    const keys = ledgerKeys(ctx.prefix);
    await ledger.addRows("b1", [newRow("new", 10)]);
    // An old-format row, as versions before 2026-12-06 wrote it: every field in the hash.
    await ctx.redis.hset(keys.row("b1", "old"), {
      id: "old",
      line: "3",
      seq: "1",
      prompt: "an old prompt",
      params: JSON.stringify({ resolution: "1K" }),
      metadata: JSON.stringify({ sku: "B" }),
      estimatedCredits: "8",
      status: "submitted",
      createdAt: "1",
      updatedAt: "1",
      taskId: "t1",
      taskIds: JSON.stringify(["t1"]),
      error: "an old error",
    });
    await ctx.redis.zadd(keys.order("b1"), 1, "old");
    await ctx.redis.zadd(keys.stateIndex("b1", "submitted"), 1, "old");
    await ctx.redis.hincrby(keys.batch("b1"), "total", 1);
    await ctx.redis.hincrby(keys.batch("b1"), "submitted", 1);
    const old = {
      id: "old",
      prompt: "an old prompt",
      params: { resolution: "1K" },
      metadata: { sku: "B" },
      taskIds: ["t1"],
      error: "an old error",
    };
    expect(await ledger.getRow("b1", "old")).toMatchObject(old);
    const all = [];
    for await (const row of ledger.rows("b1")) all.push(row);
    expect(all.map((row) => row.id)).toEqual(["new", "old"]);
    expect(all[1]).toMatchObject(old);
    expect((await ledger.rowWindow("b1", { limit: 10 })).rows[1]).toMatchObject(old);
    for await (const page of ledger.statePages("b1", "submitted")) expect(page[0]?.row).toMatchObject(old);
    expect((await ledger.stateWindow("b1", ["submitted"], { limit: 10 }))?.rows[0]).toMatchObject(old);

    const moved = await ledger.transition("b1", "old", {
      to: "archived",
      set: { images: IMAGES, error: null },
      addTaskId: "t2",
    });
    expect(moved.row).toMatchObject({ ...old, taskIds: ["t1", "t2"], images: IMAGES, error: undefined });
    expect(await ctx.redis.exists(keys.body("b1", "old"))).toBe(0);
    expect(await ctx.redis.hget(keys.row("b1", "old"), "taskIds")).toBe(JSON.stringify(["t1", "t2"]));
  });
});
