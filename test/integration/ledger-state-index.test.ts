import { beforeEach, describe, expect, it } from "vitest";
import { INDEXED_STATUSES, ledgerKeys, type NewRow, STATUSES, type Status } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";
import { keysWithPrefix } from "../helpers/redis.js";

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: {}, estimatedCredits: 8 };
}
const ids = (n: number) => Array.from({ length: n }, (_, i) => `r${i}`);

/** The ledger's clock: scripts read it, so "when a row entered its state" is exact here. */
let now: number;
/** Near the real time: a finished batch's expiry is counted from it. */
const T0 = Math.floor(Date.now() / 1000) * 1000;

const ctx = ledgerContext({ clock: { now: () => now } });
beforeEach(() => {
  now = T0;
});

/** Every index of the batch as {status: [[id, score], ...]}, read straight from Redis. */
async function indexes(batch: string): Promise<Record<string, [string, number][]>> {
  const keys = ledgerKeys(ctx.prefix);
  const out: Record<string, [string, number][]> = {};
  for (const status of INDEXED_STATUSES) {
    const flat = await ctx.redis.zrange(keys.stateIndex(batch, status), 0, -1, "WITHSCORES");
    const pairs: [string, number][] = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, Number(flat[i + 1])]);
    out[status] = pairs;
  }
  return out;
}

async function idsInState(batch: string, status: (typeof INDEXED_STATUSES)[number], enteredBefore?: number) {
  const found: string[] = [];
  const options = { pageSize: 3, ...(enteredBefore === undefined ? {} : { enteredBefore }) };
  for await (const page of ctx.ledger.statePages(batch, status, options))
    found.push(...page.map((e) => e.row.id));
  return found;
}

describe("state indexes", () => {
  it("walked for states alone, give each row's state as getRowState reads it, and no prompt, params or metadata", async () => {
    await ctx.ledger.addRows("b", ids(7).map(newRow));
    for (const id of ["r1", "r4", "r5"]) {
      await ctx.ledger.transition("b", id, { to: "submitted", addTaskId: `t-${id}` });
      await ctx.ledger.transition("b", id, { to: "archiving", set: { completedAt: now } });
    }
    const found: unknown[] = [];
    for await (const page of ctx.ledger.stateOnlyPages("b", "archiving", { pageSize: 2 }))
      found.push(...page.map((e) => e.row));
    expect(found).toEqual([
      await ctx.ledger.getRowState("b", "r1"),
      await ctx.ledger.getRowState("b", "r4"),
      await ctx.ledger.getRowState("b", "r5"),
    ]);
    for (const row of found)
      for (const field of ["prompt", "params", "metadata"]) expect(row).not.toHaveProperty(field);
    expect(found[0]).toMatchObject({ id: "r1", status: "archiving", taskId: "t-r1", taskIds: ["t-r1"] });
  });

  it("hold each row of an indexed state, scored by when it entered, and no archived or cancelled row", async () => {
    await ctx.ledger.addRows("b", ids(4).map(newRow));
    now += 10;
    await ctx.ledger.transition("b", "r0", { from: ["queued"], to: "submitted" });
    await ctx.ledger.transition("b", "r1", { from: ["queued"], to: "cancelled" });
    now += 10;
    await ctx.ledger.transition("b", "r0", { to: "generating" });
    await ctx.ledger.transition("b", "r2", { to: "failed" });
    now += 10;
    // A transition that stays keeps the entry time: the row did not re-enter its state.
    await ctx.ledger.transition("b", "r0", { set: { generatingAt: now } });
    await ctx.ledger.transition("b", "r2", { from: ["failed"], to: "queued" });
    expect(await indexes("b")).toEqual({
      queued: [
        ["r3", T0],
        ["r2", T0 + 30],
      ],
      submitted: [],
      generating: [["r0", T0 + 20]],
      archiving: [],
      failed: [],
    });
    now += 10;
    await ctx.ledger.transition("b", "r0", { to: "archiving", set: { completedAt: now } });
    await ctx.ledger.transition("b", "r0", { to: "archived" });
    const all = await indexes("b");
    expect(all.archiving).toEqual([]);
    expect(all.queued!.map(([id]) => id)).toEqual(["r3", "r2"]);
  });

  it("always agree with the batch's counters, whatever sequence of moves", async () => {
    await ctx.ledger.addRows("b", ids(30).map(newRow));
    const states: readonly Status[] = STATUSES;
    // A fixed pseudo-random walk: every state to every state, including the final ones and back.
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let i = 0; i < 300; i++) {
      now += 1;
      await ctx.ledger.transition("b", `r${next() % 30}`, { to: states[next() % states.length]! });
    }
    const summary = (await ctx.ledger.getBatch("b"))!;
    const all = await indexes("b");
    for (const status of INDEXED_STATUSES) {
      expect(all[status]!.length, status).toBe(summary[status]);
      for (const [id] of all[status]!) expect((await ctx.ledger.getRow("b", id))!.status).toBe(status);
    }
  });

  it("are walked page by page, each row once, even when many rows entered in the same millisecond", async () => {
    await ctx.ledger.addRows("b", ids(10).map(newRow));
    now += 60_000;
    await ctx.ledger.addRows("b", ["late1", "late2"].map(newRow));
    const walked = await idsInState("b", "queued");
    expect(walked.length).toBe(12);
    expect(new Set(walked).size).toBe(12);
    expect(walked.slice(10).sort()).toEqual(["late1", "late2"]);
    // Only rows that entered before a moment: the late ones are left out.
    expect((await idsInState("b", "queued", T0 + 60_000)).sort()).toEqual(ids(10).sort());
    // A state the batch has no row in costs one empty read.
    expect(await idsInState("b", "archiving")).toEqual([]);
  });

  it("tell whether a row judged in a walk is still there since the same moment", async () => {
    await ctx.ledger.addRows("b", ids(3).map(newRow));
    const [page] = await collect(ctx.ledger.statePages("b", "queued"));
    const entries = page!.map((e) => ({ id: e.row.id, enteredAt: e.enteredAt }));
    now += 5;
    await ctx.ledger.transition("b", "r0", { to: "submitted" });
    // Left and came back: entered again, later; not the row that was judged.
    await ctx.ledger.transition("b", "r1", { to: "failed" });
    await ctx.ledger.transition("b", "r1", { to: "queued" });
    expect(await ctx.ledger.stillInState("b", "queued", entries)).toEqual([false, false, true]);
  });

  it("are deleted by purge and expire with a finished batch", async () => {
    await ctx.ledger.addRows("b", ids(2).map(newRow));
    await ctx.ledger.transition("b", "r0", { to: "failed" });
    await ctx.ledger.purge("b");
    expect(await keysWithPrefix(ctx.redis, ctx.prefix)).toEqual([]);

    await ctx.ledger.addRows("c", ids(2).map(newRow));
    await ctx.ledger.transition("c", "r0", { to: "failed" });
    await ctx.ledger.transition("c", "r1", { to: "archived" });
    expect(await ctx.ledger.expireFinished("c", 3_600_000)).toBe(true);
    const failedIndex = ledgerKeys(ctx.prefix).stateIndex("c", "failed");
    expect(await ctx.redis.pttl(failedIndex)).toBeGreaterThan(0);
    // A retried row reopens the batch: no index of it may keep the expiry.
    await ctx.ledger.transition("c", "r0", { from: ["failed"], to: "queued" });
    for (const key of ledgerKeys(ctx.prefix).stateIndexes("c"))
      expect(await ctx.redis.pttl(key)).toBeLessThan(0);
  });

  it("are built for a batch recorded before they existed, once, without losing rows that move meanwhile", async () => {
    await ctx.ledger.addRows("old", ids(7).map(newRow));
    await ctx.ledger.transition("old", "r0", { to: "generating" });
    await ctx.ledger.transition("old", "r1", { to: "archived" });
    await ctx.ledger.transition("old", "r2", { to: "failed" });
    const keys = ledgerKeys(ctx.prefix);
    // What a batch of an earlier version looks like: no indexes, no mark.
    await ctx.redis.del(...keys.stateIndexes("old"));
    await ctx.redis.hdel(keys.batch("old"), "stateIndexed");
    expect(await idsInState("old", "queued")).toEqual([]);

    await ctx.ledger.ensureStateIndex("old");
    expect((await idsInState("old", "queued")).sort()).toEqual(["r3", "r4", "r5", "r6"]);
    expect(await idsInState("old", "generating")).toEqual(["r0"]);
    expect(await idsInState("old", "failed")).toEqual(["r2"]);
    expect(await ctx.redis.hget(keys.batch("old"), "stateIndexed")).toBe("1");
    // Done once: a second call reads the mark and changes nothing.
    await ctx.redis.zrem(keys.stateIndex("old", "failed"), "r2");
    await ctx.ledger.ensureStateIndex("old");
    expect(await idsInState("old", "failed")).toEqual([]);
  });
});

describe("repairs and the lease", () => {
  it("counts repaired rows on the batch, and never recreates a purged batch", async () => {
    await ctx.ledger.addRows("b", ids(1).map(newRow));
    expect((await ctx.ledger.getBatch("b"))!.repaired).toBe(0);
    expect(await ctx.ledger.countRepairs("b", 3)).toBe(true);
    expect(await ctx.ledger.countRepairs("b", 2)).toBe(true);
    expect((await ctx.ledger.getBatch("b"))!.repaired).toBe(5);
    await ctx.ledger.purge("b");
    expect(await ctx.ledger.countRepairs("b", 1)).toBe(false);
    expect(await keysWithPrefix(ctx.redis, ctx.prefix)).toEqual([]);
  });

  it("has one holder at a time, who renews it; another takes it once it lapses", async () => {
    expect(await ctx.ledger.claimLease("reconcile", "w1", 60_000)).toBe(true);
    expect(await ctx.ledger.claimLease("reconcile", "w2", 60_000)).toBe(false);
    expect(await ctx.ledger.claimLease("reconcile", "w1", 120_000)).toBe(true);
    const key = ledgerKeys(ctx.prefix).lease("reconcile");
    expect(await ctx.redis.pttl(key)).toBeGreaterThan(60_000);
    await ctx.redis.pexpire(key, 1); // the holder died: its lease runs out
    await ctx.redis.del(key);
    expect(await ctx.ledger.claimLease("reconcile", "w2", 60_000)).toBe(true);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
