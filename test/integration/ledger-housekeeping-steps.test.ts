import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { createLedger, type Ledger, ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { housekeepAll } from "../../src/worker/housekeep.js";
import { ledgerContext } from "../helpers/ledger-context.js";

/**
 * Issue 10: a batch's expiry (and its removal when it reopens) is a walk in steps of a page,
 * resumable by any process, never a walk of every row inside the transition (a row's job) that
 * finished the batch. Behaviour, not timing: which keys carry an expiry after which steps.
 */

const DAY = 86_400_000;
const ROWS = 1_600; // pages of 500: 500, 500, 500, 100
const ids = Array.from({ length: ROWS }, (_, i) => `r${i}`);

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: { n: id }, estimatedCredits: 8 };
}

const ctx = ledgerContext({ label: "hk", ttlMs: DAY });

/** Finishes every row but the last concurrently, then the last: one transition finishes the batch. */
async function finishAll(target: Ledger, batch: string): Promise<void> {
  const rest = ids.slice(0, -1);
  for (let i = 0; i < rest.length; i += 400) {
    await Promise.all(rest.slice(i, i + 400).map((id) => target.transition(batch, id, { to: "archived" })));
  }
  const last = await target.transition(batch, ids[ROWS - 1]!, { to: "archived" });
  expect(last.finished).toBe(true);
}

/** How many rows of the batch carry an expiry, and whether its own keys do. */
async function expiring(batch: string): Promise<{ rows: number; batchKeys: boolean[] }> {
  const keys = ledgerKeys(ctx.prefix);
  const pipeline = ctx.redis.pipeline();
  for (const id of ids) pipeline.pttl(keys.row(batch, id));
  const ttls = ((await pipeline.exec()) ?? []).map(([, ttl]) => Number(ttl));
  const own = [keys.batch(batch), keys.order(batch), `${keys.batch(batch)}:columns`];
  const batchKeys = await Promise.all(own.map(async (key) => (await ctx.redis.pttl(key)) > 0));
  return { rows: ttls.filter((ttl) => ttl > 0).length, batchKeys };
}

describe("a batch's expiry in resumable steps", () => {
  it("the finishing transition leaves a batch of several pages to the sweep; its steps resume where one stopped, in another process too", async () => {
    await ctx.ledger.addRows("big", ids.map(newRow));
    await finishAll(ctx.ledger, "big");
    // No page inside the transition: a walk begun there and never carried on (no worker after the
    // finish) let its page's rows expire under a batch that stayed.
    expect(await expiring("big")).toEqual({ rows: 0, batchKeys: [false, false, false] });

    // A sweep that stops after two pages (its lease lost, its worker gone).
    let asked = 0;
    const cut = await ctx.ledger.housekeep("big", { keepGoing: async () => ++asked < 2 });
    expect(cut).toMatchObject({ mode: "expire", done: 1_000, complete: false });
    expect((await expiring("big")).rows).toBe(1_000);

    // Another process resumes at row 1,000: two steps (500, then the last 100 and the batch's keys).
    const other = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: DAY });
    const steps: number[] = [];
    const end = await other.housekeep("big", { onStep: (p) => steps.push(p.done) });
    expect(steps).toEqual([1_500, 1_600]);
    expect(end).toEqual({ mode: "expire", done: ROWS, complete: true });
    expect(await expiring("big")).toEqual({ rows: ROWS, batchKeys: [true, true, true] });
    const finishedAt = (await ctx.ledger.getBatch("big"))!.finishedAt!;
    const ttl = await ctx.redis.pttl(ledgerKeys(ctx.prefix).row("big", "r1599"));
    expect(ttl).toBeLessThanOrEqual(finishedAt + DAY - Date.now() + 1_000);
    expect(ttl).toBeGreaterThan(DAY - 60_000);

    // Done is done: a further sweep finds nothing to do in one read.
    expect(await other.housekeep("big")).toEqual({ mode: "expire", done: ROWS, complete: true });
  });

  it("a batch reopened halfway through its expiry walks again from the first row, removing it", async () => {
    await ctx.ledger.addRows("big", ids.map(newRow));
    await finishAll(ctx.ledger, "big");
    let asked = 0;
    await ctx.ledger.housekeep("big", { keepGoing: async () => ++asked < 2 });
    expect((await expiring("big")).rows).toBe(1_000);

    // A retried row reopens the batch: its transition removes the expiry from the first page.
    await ctx.ledger.transition("big", "r1200", { to: "failed" }); // not a reopen: still finished
    await ctx.ledger.transition("big", "r1200", { from: ["failed"], to: "queued" });
    expect((await ctx.ledger.getBatch("big"))?.finishedAt).toBeUndefined();
    expect((await expiring("big")).rows).toBe(500);

    const end = await ctx.ledger.housekeep("big");
    expect(end).toEqual({ mode: "persist", done: ROWS, complete: true });
    expect(await expiring("big")).toEqual({ rows: 0, batchKeys: [false, false, false] });
  });

  it("the reconciler's housekeeping sweep finishes every batch's walk, and a sweep cut short is resumed by the next", async () => {
    await ctx.ledger.addRows("a", ids.map(newRow));
    await ctx.ledger.addRows("b", ids.map(newRow));
    await finishAll(ctx.ledger, "a");
    await finishAll(ctx.ledger, "b");
    await ctx.ledger.addRows("open", ["x"].map(newRow));

    let lease = 2;
    expect(await housekeepAll({ ledger: ctx.ledger, log: silentLogger() }, async () => --lease > 0)).toBe(
      false,
    );
    const [a, b] = [await expiring("a"), await expiring("b")];
    // Two pages of the sweep went somewhere (listBatches: newest first), the rest waits.
    expect(a.rows + b.rows).toBe(1_000);

    expect(await housekeepAll({ ledger: ctx.ledger, log: silentLogger() })).toBe(true);
    expect(await expiring("a")).toEqual({ rows: ROWS, batchKeys: [true, true, true] });
    expect(await expiring("b")).toEqual({ rows: ROWS, batchKeys: [true, true, true] });
    expect(await ctx.redis.pttl(ledgerKeys(ctx.prefix).row("open", "x"))).toBe(-1);
  });

  it("a row of a batch whose walk was cut short, its keys expired since, is a duplicate to enqueue: never queued (and paid for) again", async () => {
    await ctx.ledger.addRows("cut", ids.map(newRow));
    await finishAll(ctx.ledger, "cut");
    await ctx.ledger.housekeep("cut", { keepGoing: async () => false });
    expect((await expiring("cut")).rows).toBe(500);
    // The walked page's expiry came; no sweep ever went on (no worker ran since).
    const keys = ledgerKeys(ctx.prefix);
    await ctx.redis.del(...ids.slice(0, 500).flatMap((id) => [keys.row("cut", id), keys.body("cut", id)]));

    // The same manifest enqueued again: every row is known, none is new.
    const outcomes = await ctx.ledger.addRows("cut", ids.map(newRow));
    expect(outcomes.filter((o) => o !== "duplicate")).toEqual([]);
    expect(await ctx.ledger.getBatch("cut")).toMatchObject({ total: ROWS, queued: 0, archived: ROWS });
  });
});
