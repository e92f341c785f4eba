import { describe, expect, it } from "vitest";
import { createLedger, type Ledger, ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";
import { keysWithPrefix } from "../helpers/redis.js";

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: {}, estimatedCredits: 8 };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `r${i}`);
const DAY = 24 * 3600 * 1000;

const ctx = ledgerContext();

/** PTTL of every ledger key of the batch (its hash tag's), by name after `{prefix:batch}:ledger:`. */
async function batchTtls(batch: string): Promise<Record<string, number>> {
  const root = `{${ctx.prefix}:${batch}}:ledger:`;
  const keys = (await keysWithPrefix(ctx.redis, ctx.prefix)).filter((k) => k.startsWith(root));
  const ttls: Record<string, number> = {};
  for (const key of keys) ttls[key.slice(root.length)] = await ctx.redis.pttl(key);
  return ttls;
}

async function finish(target: Ledger, batch: string, rowIds: string[]): Promise<void> {
  for (const id of rowIds) {
    await target.transition(batch, id, { to: "archiving", set: { completedAt: 1 } });
    await target.transition(batch, id, { to: "archived" });
  }
}

/** The test's connection, but its `n`th page read of a purge (ZRANGE) fails: a purge cut short. */
function connectionLostAt(n: number): typeof ctx.redis {
  let pageReads = 0;
  return new Proxy(ctx.redis, {
    get(target, name, receiver) {
      if (name === "zrange" && ++pageReads === n)
        return async () => Promise.reject(new Error("connection lost"));
      const value = Reflect.get(target, name, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The ledger keys of `batch` left in Redis. */
async function keysOfBatch(batch: string): Promise<string[]> {
  return (await keysWithPrefix(ctx.redis, ctx.prefix)).filter((k) => k.includes(`${ctx.prefix}:${batch}}`));
}

/** `rows` of `batch`, archived and frozen (every page: the batch is finished). */
async function archivedAndFrozen(batch: string, rows: string[]): Promise<void> {
  await ctx.ledger.addRows(batch, rows.map(newRow));
  for (const id of rows) await ctx.ledger.transition(batch, id, { to: "archived" });
  expect(await ctx.ledger.freeze(batch, { settleMs: 0 })).toMatchObject({ complete: true });
}

describe("purge", () => {
  it("removes every key of the batch, older versions' task mappings included, and leaves other batches alone", async () => {
    await ctx.ledger.addRows("gone", ids(1200).map(newRow), { budget: 1000 });
    await ctx.ledger.transition("gone", "r0", { to: "submitted", addTaskId: "task-a" });
    await ctx.ledger.transition("gone", "r0", { addTaskId: "task-b" });
    await ctx.ledger.transition("gone", "r1", {
      to: "archiving",
      set: { completedAt: 5 },
      addTaskId: "task-c",
    });
    await ctx.ledger.addRows("kept", ids(2).map(newRow));
    await ctx.ledger.transition("kept", "r0", { to: "submitted", addTaskId: "task-k" });
    // Task map entries as versions before this one wrote them after each create.
    const legacy = (task: string) => `{${ctx.prefix}:task:${task}}`;
    for (const [task, row] of [
      ["task-a", "gone/r0"],
      ["task-c", "gone/r1"],
      ["task-k", "kept/r0"],
    ])
      await ctx.redis.set(legacy(task!), row!, "PX", 60_000);
    // Those versions listed a row's tasks in one `taskIds` field: the rows get that layout too.
    const keys = ledgerKeys(ctx.prefix);
    await ctx.redis.hset(keys.row("gone", "r0"), "taskIds", JSON.stringify(["task-a", "task-b"]));
    await ctx.redis.hset(keys.row("gone", "r1"), "taskIds", JSON.stringify(["task-c"]));
    await ctx.redis.hset(keys.row("kept", "r0"), "taskIds", JSON.stringify(["task-k"]));

    expect(await ctx.ledger.purge("gone")).toBe(1200);

    const left = await keysWithPrefix(ctx.redis, ctx.prefix);
    expect(left.filter((k) => k.includes("gone"))).toEqual([]);
    expect(await ctx.redis.exists(legacy("task-a"), legacy("task-c"))).toBe(0);
    expect(await ctx.ledger.getBatch("gone")).toBeUndefined();
    expect((await ctx.ledger.listBatches()).map((b) => b.batch)).toEqual(["kept"]);
    expect(await ctx.redis.get(legacy("task-k"))).toBe("kept/r0");

    expect(await ctx.ledger.purge("kept")).toBe(2);
    expect(await keysWithPrefix(ctx.redis, ctx.prefix)).toEqual([]);
  });

  it("cut short after a page: enqueue is refused until it is run again, which deletes the rest, each row counted once (a walked batch too)", async () => {
    const rows = ids(700);
    await ctx.ledger.addRows("cut", rows.map(newRow));
    // An expiry walk went over it (hkMode), then it was reopened: add-rows then takes a row of the
    // order zset with no keys for one still there (frozen or expired).
    await ctx.redis.hset(ledgerKeys(ctx.prefix).batch("cut"), "hkMode", "persist");
    // A connection that dies at the purge's second page read.
    const dying = connectionLostAt(2);
    const cut = createLedger(dying, { prefix: ctx.prefix });
    await expect(cut.purge("cut")).rejects.toThrow("connection lost");
    expect(await ctx.ledger.getRow("cut", "r0")).toBeUndefined();
    // Its counters still count the 500 rows gone: nothing is added to it meanwhile.
    await expect(ctx.ledger.addRows("cut", rows.map(newRow))).rejects.toMatchObject({
      code: "batch_purging",
    });

    expect(await ctx.ledger.purge("cut")).toBe(200);
    expect(await keysOfBatch("cut")).toEqual([]);
    const outcomes = await ctx.ledger.addRows("cut", rows.map(newRow));
    expect(outcomes.filter((o) => o === "new")).toHaveLength(700);
    expect(await ctx.ledger.getBatch("cut")).toMatchObject({ total: 700, queued: 700 });
  });

  it("cut short, leaves a frozen page the next step would have deleted whole: its rows are still found, and deleted by the purge run again", async () => {
    const rows = ids(700);
    await archivedAndFrozen("frozen", rows);
    expect(await ctx.redis.exists(ledgerKeys(ctx.prefix).row("frozen", "r500"))).toBe(0);
    const dying = connectionLostAt(2);
    await expect(createLedger(dying, { prefix: ctx.prefix }).purge("frozen")).rejects.toThrow(
      "connection lost",
    );
    // The first step's page (seqs 0-499) ran into frozen page 7 (seqs 448-511): it stays, whole.
    for (const id of ["r448", "r499", "r500", "r511"])
      expect(await ctx.ledger.getRow("frozen", id)).toMatchObject({ status: "archived" });
    expect(await ctx.ledger.getRow("frozen", "r447")).toBeUndefined();
    // Run again, it finds them all by their order entries, page 7 whole.
    expect(await ctx.ledger.purge("frozen")).toBe(252);
    expect(await keysOfBatch("frozen")).toEqual([]);
  });

  it("cut short after a straddling frozen page went, leaves no order entry of its rows: run again, it counts only the rest", async () => {
    const rows = ids(1_200);
    await archivedAndFrozen("later", rows);
    const dying = connectionLostAt(3);
    await expect(createLedger(dying, { prefix: ctx.prefix }).purge("later")).rejects.toThrow(
      "connection lost",
    );
    // Step two deleted page 7 (seqs 448-511), put off by step one: r448-r499 went with it.
    for (const id of ["r448", "r499", "r959"]) expect(await ctx.ledger.getRow("later", id)).toBeUndefined();
    for (const id of ["r960", "r1199"])
      expect(await ctx.ledger.getRow("later", id)).toMatchObject({ status: "archived" });
    // Run again, it counts the rest once: no order entry was left of a row already deleted.
    expect(await ctx.ledger.purge("later")).toBe(240);
    expect(await keysOfBatch("later")).toEqual([]);
  });

  it("of a frozen batch ending on a full step (1,000 rows), deletes every frozen page and counts every row", async () => {
    const rows = ids(1_000);
    await archivedAndFrozen("full", rows);
    expect(await ctx.ledger.purge("full")).toBe(1_000);
    const left = (await keysWithPrefix(ctx.redis, ctx.prefix)).filter((k) =>
      k.includes(`${ctx.prefix}:full}`),
    );
    expect(left).toEqual([]);
  });

  it("purges an unknown batch as a no-op", async () => {
    expect(await ctx.ledger.purge("never")).toBe(0);
    expect(await keysWithPrefix(ctx.redis, ctx.prefix)).toEqual([]);
  });
});

describe("expiry of finished batches", () => {
  it("expireFinished sets every key of a finished batch to expire ttl after finishedAt", async () => {
    await ctx.ledger.addRows("b1", ids(3).map(newRow));
    expect(await ctx.ledger.expireFinished("b1", DAY)).toBe(false);
    expect(Object.values(await batchTtls("b1")).every((ttl) => ttl === -1)).toBe(true);

    await finish(ctx.ledger, "b1", ids(3));
    const finishedAt = (await ctx.ledger.getBatch("b1"))!.finishedAt!;
    expect(await ctx.ledger.expireFinished("b1", DAY)).toBe(true);
    const ttls = await batchTtls("b1");
    // Each row's body (row-body.ts) expires with its hash, at the same time.
    expect(Object.keys(ttls).sort()).toEqual([
      "batch",
      "batch:progress",
      "body:r0",
      "body:r1",
      "body:r2",
      "order",
      "row:r0",
      "row:r1",
      "row:r2",
    ]);
    for (const [key, ttl] of Object.entries(ttls)) {
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(finishedAt + DAY - Date.now() + 1_000);
      expect(ttl, key).toBeGreaterThan(DAY - 60_000);
    }
  });

  it("with a ledger TTL, the transition that finishes a batch sets the expiry itself", async () => {
    const expiring = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: 30 * DAY });
    await expiring.addRows("b1", ids(2).map(newRow));
    await finish(expiring, "b1", ["r0"]);
    expect((await batchTtls("b1")).batch).toBe(-1);
    await finish(expiring, "b1", ["r1"]);
    const ttls = await batchTtls("b1");
    for (const [key, ttl] of Object.entries(ttls)) expect(ttl, key).toBeGreaterThan(29 * DAY);
  });

  it("appending rows to a finished batch reopens it and removes every expiry", async () => {
    const expiring = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: DAY });
    await expiring.addRows("b1", ids(2).map(newRow));
    await finish(expiring, "b1", ids(2));
    expect((await batchTtls("b1"))["row:r0"]).toBeGreaterThan(0);

    expect(await expiring.addRows("b1", [newRow("r0"), newRow("late")])).toEqual(["duplicate", "new"]);
    const batch = await expiring.getBatch("b1");
    expect(batch?.finishedAt).toBeUndefined();
    expect(batch).toMatchObject({ total: 3, queued: 1, archived: 2 });
    for (const [key, ttl] of Object.entries(await batchTtls("b1"))) expect(ttl, key).toBe(-1);
  });

  it("retrying a row of a finished batch reopens it and removes every expiry", async () => {
    const expiring = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: DAY });
    await expiring.addRows("b1", ids(3).map(newRow));
    await finish(expiring, "b1", ["r0", "r1"]);
    await expiring.transition("b1", "r2", { to: "failed", set: { error: "generation failed" } });
    expect((await batchTtls("b1"))["row:r1"]).toBeGreaterThan(0);

    await expiring.transition("b1", "r2", { from: ["failed"], to: "queued", set: { error: null } });
    expect((await expiring.getBatch("b1"))?.finishedAt).toBeUndefined();
    for (const [key, ttl] of Object.entries(await batchTtls("b1"))) expect(ttl, key).toBe(-1);
  });
});
