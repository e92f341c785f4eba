import { describe, expect, it } from "vitest";
import { FROZEN_PAGE_ROWS } from "../../src/ledger/frozen-page.js";
import { ledgerKeys, type NewRow } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";

/**
 * Frozen pages (frozen.ts) are a batch's keys like its rows: the housekeeping walk expires and
 * persists them with the rows they replaced, and a purge deletes them. The freezer's work is done
 * here by hand (a page key set, its rows' row and body keys deleted), so that only housekeeping is
 * under test.
 */

const ROWS = 600; // housekeeping and purge steps of 500: page 7 (seqs 448..511) spans two of them
const FROZEN = [0, 1, 2, 3, 7];
/** A row of a frozen page left with its keys (not archived when the page froze): counted once. */
const UNFROZEN = 200;
const DAY = 86_400_000;
const BATCH = "b";

const ids = Array.from({ length: ROWS }, (_, i) => `r${i}`);

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: {}, estimatedCredits: 8 };
}

const ctx = ledgerContext({ label: "hkf" });

/** Rows r<i> are added in order: seq i. Archives them all, so the batch finishes. */
async function addAndFinish(): Promise<void> {
  await ctx.ledger.addRows(BATCH, ids.map(newRow));
  for (let i = 0; i < ROWS; i += 200) {
    await Promise.all(
      ids.slice(i, i + 200).map((id) => ctx.ledger.transition(BATCH, id, { to: "archived" })),
    );
  }
  expect((await ctx.ledger.getBatch(BATCH))?.finishedAt).toBeDefined();
}

/** What the freezer does: one key per page, its rows' keys gone; the page's expiry at `at` if given. */
async function freeze(at?: number): Promise<string[]> {
  const keys = ledgerKeys(ctx.prefix);
  const pages: string[] = [];
  for (const p of FROZEN) {
    const key = keys.frozen(BATCH, p);
    await ctx.redis.set(key, `page ${p}`);
    if (at !== undefined) await ctx.redis.pexpireat(key, at);
    pages.push(key);
    for (let seq = p * FROZEN_PAGE_ROWS; seq < (p + 1) * FROZEN_PAGE_ROWS && seq < ROWS; seq++) {
      if (seq === UNFROZEN) continue;
      await ctx.redis.del(keys.row(BATCH, `r${seq}`), keys.body(BATCH, `r${seq}`));
    }
  }
  return pages;
}

/** Every key in the batch's hash tag, by SCAN. */
async function batchKeys(): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await ctx.redis.scan(cursor, "MATCH", `{${ctx.prefix}:${BATCH}}*`, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

describe("frozen pages and housekeeping", () => {
  it("expireFinished gives every frozen page the rows' expiry", async () => {
    await addAndFinish();
    const pages = await freeze();
    expect(await ctx.ledger.expireFinished(BATCH, DAY)).toBe(true);

    const keys = ledgerKeys(ctx.prefix);
    const rowsAt = await ctx.redis.pexpiretime(keys.row(BATCH, `r${ROWS - 1}`));
    expect(rowsAt).toBeGreaterThan(Date.now() + DAY - 60_000);
    expect(await ctx.redis.pexpiretime(keys.batch(BATCH))).toBe(rowsAt);
    for (const page of pages) expect(await ctx.redis.pexpiretime(page), page).toBe(rowsAt);
  });

  it("a reopen's persist walk removes the frozen pages' expiry", async () => {
    await addAndFinish();
    expect(await ctx.ledger.expireFinished(BATCH, DAY)).toBe(true);
    const keys = ledgerKeys(ctx.prefix);
    // Frozen while the batch was expiring: the freezer gives the page its rows' expiry.
    const pages = await freeze(await ctx.redis.pexpiretime(keys.row(BATCH, `r${ROWS - 1}`)));
    for (const page of pages) expect(await ctx.redis.pttl(page), page).toBeGreaterThan(0);

    expect(await ctx.ledger.addRows(BATCH, [newRow("late")])).toEqual(["new"]);
    expect((await ctx.ledger.getBatch(BATCH))?.finishedAt).toBeUndefined();
    expect(await ctx.ledger.housekeep(BATCH)).toEqual({ mode: "persist", done: ROWS + 1, complete: true });
    for (const page of pages) expect(await ctx.redis.pttl(page), page).toBe(-1);
    expect(await ctx.redis.pttl(keys.row(BATCH, `r${UNFROZEN}`))).toBe(-1);
  });

  it("purge deletes the frozen pages and counts their rows", async () => {
    await addAndFinish();
    await freeze();
    expect((await batchKeys()).length).toBeGreaterThan(0);

    // Every row once: those with keys, and those that lived only in a page (page 7's across steps).
    expect(await ctx.ledger.purge(BATCH)).toBe(ROWS);
    expect(await batchKeys()).toEqual([]);
    expect(await ctx.ledger.getBatch(BATCH)).toBeUndefined();
  });
});
