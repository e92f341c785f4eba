import { describe, expect, it } from "vitest";
import { createLedger, type Ledger, ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { redisPrefixContext } from "../helpers/ledger-context.js";
import { keysWithPrefix } from "../helpers/redis.js";

/**
 * A finished batch reopened late in its TTL (a retry, an append) must keep every key: its hash,
 * every batch-level key (order, unarchived, state indexes, columns, parked) and every row, not
 * only the first page of rows, with the rest left to a sweep that may come after the expiry.
 */

const TTL = 10 * 60_000; // well inside the urgency threshold: every reopen is late in the TTL
const DAY = 86_400_000;
const ROWS = 1_200; // pages of 500: 500, 500, 200
const FAILED = 3; // r0..r2 fail, the rest are archived
const ids = Array.from({ length: ROWS }, (_, i) => `r${i}`);

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: { n: id }, estimatedCredits: 8 };
}

const ctx = redisPrefixContext("hkr");

/** Fails the first rows and archives the rest (the last alone): the batch finishes, its expiry walked to the end. */
async function finishAndExpire(ledger: Ledger, batch: string): Promise<void> {
  await ledger.addRows(batch, ids.map(newRow));
  const rest = ids.slice(0, -1);
  for (let i = 0; i < rest.length; i += 400) {
    await Promise.all(
      rest
        .slice(i, i + 400)
        .map((id, j) => ledger.transition(batch, id, { to: i + j < FAILED ? "failed" : "archived" })),
    );
  }
  expect((await ledger.transition(batch, ids[ROWS - 1]!, { to: "archived" })).finished).toBe(true);
  expect(await ledger.housekeep(batch)).toMatchObject({ mode: "expire", complete: true });
}

/** PTTL of every ledger key of the batch (task map keys have their own TTL), by key name. */
async function ttls(batch: string): Promise<Map<string, number>> {
  const root = ledgerKeys(ctx.prefix).batchRoot(batch);
  const keys = (await keysWithPrefix(ctx.redis, ctx.prefix)).filter((k) => k.startsWith(root));
  const pipeline = ctx.redis.pipeline();
  for (const key of keys) pipeline.pttl(key);
  const replies = (await pipeline.exec()) ?? [];
  return new Map(keys.map((key, i) => [key, Number(replies[i]![1])]));
}

/** The batch-level keys that must exist for the test to mean anything (the failed index among them). */
function batchLevelKeys(batch: string): string[] {
  const keys = ledgerKeys(ctx.prefix);
  return [
    keys.batch(batch),
    keys.order(batch),
    keys.stateIndex(batch, "failed"),
    `${keys.batch(batch)}:columns`,
  ];
}

async function expectAllExpiring(batch: string): Promise<void> {
  const before = await ttls(batch);
  for (const key of batchLevelKeys(batch)) expect(before.has(key), key).toBe(true);
  expect([...before.values()].every((ttl) => ttl > 0 && ttl <= TTL)).toBe(true);
}

/** Every key of the batch, its rows and each of its batch-level keys, without an expiry. */
async function expectNoneExpiring(batch: string, extraRows: number): Promise<void> {
  const after = await ttls(batch);
  for (const key of batchLevelKeys(batch)) expect(after.get(key), key).toBe(-1);
  const rows = [...after.keys()].filter((k) =>
    k.startsWith(`${ledgerKeys(ctx.prefix).batchRoot(batch)}:row:`),
  );
  expect(rows).toHaveLength(ROWS + extraRows);
  const expiring = [...after].filter(([, ttl]) => ttl !== -1).map(([key]) => key);
  expect(expiring).toEqual([]);
}

describe("a batch reopened late in its TTL", () => {
  it("a retried row (failed -> queued) removes the expiry from every key of the batch at once", async () => {
    const ledger = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: TTL });
    await finishAndExpire(ledger, "b");
    await expectAllExpiring("b");

    const moved = await ledger.transition("b", "r1", { from: ["failed"], to: "queued" });
    expect(moved.ok).toBe(true);
    expect((await ledger.getBatch("b"))?.finishedAt).toBeUndefined();
    await expectNoneExpiring("b", 0);
    expect(await ledger.columns("b")).toEqual(["n"]);
    // The walk is done: the sweep has nothing left.
    expect(await ledger.housekeep("b")).toEqual({ mode: "persist", done: ROWS, complete: true });
  });

  it("an appended row removes the expiry from every key of the batch at once, state indexes and columns included", async () => {
    const ledger = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: TTL });
    await finishAndExpire(ledger, "b");
    await expectAllExpiring("b");

    const appended: NewRow = { ...newRow("late"), metadata: { n: "late", extra: "x" } };
    expect(await ledger.addRows("b", [appended])).toEqual(["new"]);
    expect((await ledger.getBatch("b"))?.finishedAt).toBeUndefined();
    await expectNoneExpiring("b", 1);
    expect(await ledger.columns("b")).toEqual(["n", "extra"]);
    expect(await ledger.housekeep("b")).toEqual({ mode: "persist", done: ROWS + 1, complete: true });
  });

  it("far from its expiry, a reopen persists the batch-level keys at once and leaves the rows past the first page to the sweep", async () => {
    const ledger = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: DAY });
    await finishAndExpire(ledger, "b");

    await ledger.transition("b", "r1", { from: ["failed"], to: "queued" });
    const after = await ttls("b");
    for (const key of batchLevelKeys("b")) expect(after.get(key), key).toBe(-1);
    const rowsExpiring = [...after].filter(([key, ttl]) => key.includes("}:ledger:row:") && ttl !== -1);
    expect(rowsExpiring).toHaveLength(ROWS - 500);

    expect(await ledger.housekeep("b")).toEqual({ mode: "persist", done: ROWS, complete: true });
    await expectNoneExpiring("b", 0);
  });
});
