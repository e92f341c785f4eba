import { describe, expect, it, vi } from "vitest";
import { createLedger, LedgerError, type NewRow } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";
import { keysWithPrefix } from "../helpers/redis.js";

function newRow(id: string, overrides: Partial<NewRow> = {}): NewRow {
  return {
    id,
    line: 2,
    prompt: `a lighthouse, ${id}`,
    params: { image_size: "square", acceleration_level: "high" },
    metadata: { owner: "ada" },
    estimatedCredits: 6,
    ...overrides,
  };
}

const ctx = ledgerContext();

describe("addRows", () => {
  it("records new rows as queued and counts them, keys under the batch's hash tag", async () => {
    const outcomes = await ctx.ledger.addRows("b1", [newRow("r1"), newRow("r2", { estimatedCredits: 8 })], {
      file: "prompts.csv",
    });
    expect(outcomes).toEqual(["new", "new"]);
    const batch = await ctx.ledger.getBatch("b1");
    expect(batch).toMatchObject({
      batch: "b1",
      file: "prompts.csv",
      total: 2,
      queued: 2,
      submitted: 0,
      archived: 0,
      creditsEstimated: 14,
      creditsSpent: 0,
      waitingBudget: 0,
    });
    expect(batch?.budget).toBeUndefined();
    expect(batch?.finishedAt).toBeUndefined();
    expect(batch?.createdAt).toBeGreaterThan(Date.now() - 60_000);

    const row = await ctx.ledger.getRow("b1", "r2");
    expect(row).toMatchObject({
      batch: "b1",
      id: "r2",
      line: 2,
      seq: 1,
      prompt: "a lighthouse, r2",
      params: { image_size: "square", acceleration_level: "high" },
      metadata: { owner: "ada" },
      estimatedCredits: 8,
      status: "queued",
      taskIds: [],
      images: [],
      resubmits: 0,
      uncertain: 0,
      creditsReserved: 0,
      waitingBudget: false,
    });
    expect(row?.taskId).toBeUndefined();
    // Every key of the batch in the batch's own hash tag; the deployment's batch index in its own.
    for (const key of await keysWithPrefix(ctx.redis, ctx.prefix)) {
      expect(
        [`{${ctx.prefix}:b1}:ledger:`, `{${ctx.prefix}}:ledger:index`].some((p) => key.startsWith(p)),
      ).toBe(true);
    }
  });

  it("reports rows already in the batch as duplicate-queued while queued, duplicate once they moved on", async () => {
    await ctx.ledger.addRows("b1", [newRow("r1"), newRow("r2")]);
    await ctx.ledger.transition("b1", "r2", { to: "submitted" });
    const again = await ctx.ledger.addRows("b1", [newRow("r1"), newRow("r2"), newRow("r3")]);
    expect(again).toEqual(["duplicate-queued", "duplicate", "new"]);
    expect(await ctx.ledger.getBatch("b1")).toMatchObject({
      total: 3,
      queued: 2,
      submitted: 1,
      creditsEstimated: 18,
    });
  });

  it("keeps the first row when an id repeats within one call, and calls the repeat a duplicate", async () => {
    const outcomes = await ctx.ledger.addRows("b1", [newRow("r1"), newRow("r1", { prompt: "other" })]);
    expect(outcomes).toEqual(["new", "duplicate"]);
    expect((await ctx.ledger.getRow("b1", "r1"))?.prompt).toBe("a lighthouse, r1");
    expect((await ctx.ledger.getBatch("b1"))?.total).toBe(1);
  });

  it("continues the sequence when rows are appended later", async () => {
    await ctx.ledger.addRows("b1", [newRow("c"), newRow("a")]);
    await ctx.ledger.addRows("b1", [newRow("a"), newRow("b")]);
    const rows = [];
    for await (const row of ctx.ledger.rows("b1")) rows.push([row.id, row.seq]);
    expect(rows).toEqual([
      ["c", 0],
      ["a", 1],
      ["b", 2],
    ]);
  });

  it("records 2,500 rows in chunks of one script call each, in order", async () => {
    const many = Array.from({ length: 2500 }, (_, i) => newRow(`row-${i}`, { line: i + 2 }));
    const started = performance.now();
    const outcomes = await ctx.ledger.addRows("big", many);
    const elapsed = performance.now() - started;
    expect(outcomes.every((o) => o === "new")).toBe(true);
    expect(await ctx.ledger.getBatch("big")).toMatchObject({
      total: 2500,
      queued: 2500,
      creditsEstimated: 15_000,
    });
    let expectedSeq = 0;
    for await (const row of ctx.ledger.rows("big", { pageSize: 300 })) {
      expect(row.seq).toBe(expectedSeq);
      expect(row.id).toBe(`row-${expectedSeq}`);
      expectedSeq += 1;
    }
    expect(expectedSeq).toBe(2500);
    // Generous: catches a per-row round trip (thousands of them), not a slow machine.
    expect(elapsed).toBeLessThan(5_000);
  });

  it("creates the batch with its budget in the same step, and an empty call still creates it", async () => {
    await ctx.ledger.addRows("b1", [newRow("r1")], { budget: 100 });
    expect((await ctx.ledger.getBatch("b1"))?.budget).toBe(100);
    expect(await ctx.ledger.addRows("empty", [], { file: "none.csv" })).toEqual([]);
    expect(await ctx.ledger.getBatch("empty")).toMatchObject({ total: 0, file: "none.csv" });
  });

  it("refuses names that cannot be part of a key or a BullMQ job id", async () => {
    await expect(ctx.ledger.addRows("a/b", [newRow("r1")])).rejects.toBeInstanceOf(LedgerError);
    await expect(ctx.ledger.addRows("b1", [newRow("r:1")])).rejects.toMatchObject({ code: "invalid_name" });
    expect(() => createLedger(ctx.redis, { prefix: "{bad}" })).toThrow(LedgerError);
  });

  it("writes nothing when any row of the call cannot be stored, even one in a later chunk", async () => {
    const many = Array.from({ length: 1500 }, (_, i) => newRow(`row-${i}`));
    many[1400] = newRow("row-1400", { estimatedCredits: Number.NaN });
    await expect(ctx.ledger.addRows("b1", many)).rejects.toMatchObject({ code: "invalid_value" });
    expect(await keysWithPrefix(ctx.redis, ctx.prefix)).toEqual([]);
  });

  it("stamps times from an injected clock when one is given", async () => {
    const clocked = createLedger(ctx.redis, { prefix: ctx.prefix, clock: { now: () => 1_700_000_000_123 } });
    await clocked.addRows("b1", [newRow("r1")]);
    expect((await clocked.getBatch("b1"))?.createdAt).toBe(1_700_000_000_123);
    expect((await clocked.getRow("b1", "r1"))?.createdAt).toBe(1_700_000_000_123);
  });
});

describe("reading", () => {
  it("filters rows by status, in seq order", async () => {
    await ctx.ledger.addRows(
      "b1",
      ["r1", "r2", "r3", "r4", "r5"].map((id) => newRow(id)),
    );
    await ctx.ledger.transition("b1", "r2", { to: "failed", set: { error: "bad prompt" } });
    await ctx.ledger.transition("b1", "r4", { to: "failed" });
    await ctx.ledger.transition("b1", "r5", { to: "submitted" });
    const failed: string[] = [];
    for await (const row of ctx.ledger.rows("b1", { statuses: ["failed"], pageSize: 2 })) failed.push(row.id);
    expect(failed).toEqual(["r2", "r4"]);
    const active: string[] = [];
    for await (const row of ctx.ledger.rows("b1", { statuses: ["queued", "submitted"] })) active.push(row.id);
    expect(active).toEqual(["r1", "r3", "r5"]);
    expect((await ctx.ledger.getRow("b1", "r2"))?.error).toBe("bad prompt");
  });

  it("reads one row (the stages' read) without a pipeline, and several with one, the same rows either way", async () => {
    await ctx.ledger.addRows("b1", [newRow("r1"), newRow("r2", { metadata: { owner: "bo" } })]);
    const pipelines = vi.spyOn(ctx.redis, "pipeline");
    try {
      const one = await ctx.ledger.getRow("b1", "r2");
      // An ioredis pipeline copies every command BullMQ defined on the client: dearer than two reads.
      expect(pipelines).not.toHaveBeenCalled();
      expect(one).toMatchObject({ id: "r2", prompt: "a lighthouse, r2", metadata: { owner: "bo" } });
      const both = [];
      for await (const row of ctx.ledger.rows("b1")) both.push(row);
      expect(pipelines).toHaveBeenCalled();
      expect(both[1]).toEqual(one);
    } finally {
      pipelines.mockRestore();
    }
  });

  it("returns undefined for unknown batches and rows, and yields nothing for them", async () => {
    expect(await ctx.ledger.getBatch("nope")).toBeUndefined();
    expect(await ctx.ledger.getRow("nope", "r1")).toBeUndefined();
    const rows = [];
    for await (const row of ctx.ledger.rows("nope")) rows.push(row);
    expect(rows).toEqual([]);
  });

  it("lists batches newest first, and forgets batches whose keys expired", async () => {
    const clockAt = (now: number) =>
      createLedger(ctx.redis, { prefix: ctx.prefix, clock: { now: () => now } });
    await clockAt(1_000).addRows("old", [newRow("r1")]);
    await clockAt(3_000).addRows("new", [newRow("r1")]);
    await clockAt(2_000).addRows("mid", [newRow("r1")]);
    expect((await ctx.ledger.listBatches()).map((b) => b.batch)).toEqual(["new", "mid", "old"]);
    await ctx.redis.del(`{${ctx.prefix}:mid}:ledger:batch`);
    expect((await ctx.ledger.listBatches()).map((b) => b.batch)).toEqual(["new", "old"]);
    expect(await ctx.redis.zscore(`{${ctx.prefix}}:ledger:index`, "mid")).toBeNull();
  });

  it("records a created task in its row only: no taskId -> row entry is written", async () => {
    await ctx.ledger.addRows("b1", [newRow("r1")]);
    await ctx.ledger.transition("b1", "r1", { to: "submitted", addTaskId: "task-abc" });
    expect((await ctx.ledger.getRow("b1", "r1"))?.taskIds).toEqual(["task-abc"]);
    expect(await ctx.redis.exists(`{${ctx.prefix}:task:task-abc}`)).toBe(0);
  });
});
