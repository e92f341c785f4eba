import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { FreezeOptions } from "../../src/ledger/freeze.js";
import { encodeFrozenPage } from "../../src/ledger/frozen.js";
import { ledgerKeys, type NewRow, type RowRecord } from "../../src/ledger/index.js";
import { freezeScript } from "../../src/ledger/scripts/index.js";
import { writeResults } from "../../src/report/results.js";
import { archiveRow } from "../helpers/archived-row.js";
import { ledgerContext } from "../helpers/ledger-context.js";
import { stateOf } from "../helpers/stage-fakes.js";

/*
 * Issue 10, frozen pages: a batch's settled archived rows are compressed a page of 64 seqs into
 * one key (ledger/freeze.ts). What must hold: every reader sees a frozen row exactly as before;
 * its keys are gone and its bytes fall; nothing moving, young, failed, cancelled or holding an
 * uncertain task is frozen; the walk resumes where it stopped; a re-enqueue adds nothing; money
 * scripts on a frozen row change nothing.
 */

let now = 1_800_000_000_000;
const clock = { now: () => now };
const ctx = ledgerContext({ clock });
const SETTLE = 60_000;
const freeze = (opts: Partial<FreezeOptions> = {}) => ctx.ledger.freeze("b", { settleMs: SETTLE, ...opts });
/** A freeze walk's answer: rows frozen, pages passed, whether it reached the batch's end. */
const walked = (frozen: number, pages: number, complete: boolean) => ({ frozen, pages, complete });
const WORDS =
  "misty harbour lighthouse dusk oil painting soft light gulls waves fox forest autumn cinematic portrait neon city rain reflections teapot watercolor dragon castle ruins golden hour macro bokeh".split(
    " ",
  );

function prompt(i: number): string {
  let text = `Row ${i}:`;
  let state = i * 7919 + 13;
  while (text.length < 300) {
    state = (state * 1103515245 + 12345) % 2147483648;
    text += ` ${WORDS[state % WORDS.length]}`;
  }
  return text.slice(0, 300);
}

function newRow(i: number): NewRow {
  return {
    id: `r-${String(i).padStart(4, "0")}`,
    line: i + 2,
    prompt: prompt(i),
    params: { image_size: ["square", "portrait_4_3"][i % 2], seed: i },
    metadata: { sku: `sku-${i}` },
    estimatedCredits: 6,
  };
}

async function addBatch(batch: string, count: number): Promise<NewRow[]> {
  const rows = Array.from({ length: count }, (_, i) => newRow(i));
  await ctx.ledger.addRows(batch, rows);
  return rows;
}

async function archive(batch: string, id: string): Promise<void> {
  await archiveRow(ctx.ledger, batch, id, now);
}

async function allRows(batch: string, rows: readonly NewRow[]): Promise<(RowRecord | undefined)[]> {
  return Promise.all(rows.map((row) => ctx.ledger.getRow(batch, row.id)));
}

async function results(batch: string): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (chunk: Buffer) => chunks.push(chunk));
  await writeResults({ ledger: ctx.ledger, pageSize: 50 }, batch, "csv", out);
  return Buffer.concat(chunks).toString("utf8");
}

async function bytesOf(keys: readonly string[]): Promise<number> {
  let total = 0;
  for (const key of keys)
    total += Number((await ctx.redis.call("MEMORY", "USAGE", key, "SAMPLES", "0")) ?? 0);
  return total;
}

describe("frozen pages", () => {
  it("freeze a finished batch's settled archived rows: every reader sees them as before, in a fifth of the bytes", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 150);
    for (const row of rows.slice(0, 148)) if (row.id !== "r-0010") await archive("b", row.id);
    await ctx.ledger.transition("b", "r-0010", { to: "failed", set: { error: "refused" } });
    await ctx.ledger.transition("b", "r-0148", { to: "cancelled" });
    await ctx.ledger.transition("b", "r-0149", { to: "cancelled" });
    const before = await allRows("b", rows);
    const csvBefore = await results("b");
    const frozenIds = rows.map((row) => row.id).filter((id) => !["r-0010", "r-0148", "r-0149"].includes(id));
    const rowBytes = await bytesOf(frozenIds.flatMap((id) => [keys.row("b", id), keys.body("b", id)]));

    // Archived a second ago: not settled yet, nothing frozen.
    now += 1_000;
    expect(await freeze()).toEqual(walked(0, 0, false));
    expect(await ctx.redis.exists(keys.row("b", "r-0000"))).toBe(1);

    now += SETTLE;
    expect(await freeze()).toEqual(walked(147, 3, true));
    expect(await ctx.redis.hmget(keys.batch("b"), "frozenTo", "frozen")).toEqual(["192", "147"]);
    for (const id of frozenIds) {
      expect(await ctx.redis.exists(keys.row("b", id), keys.body("b", id))).toBe(0);
    }
    // Failed and cancelled rows keep their keys: retry and the failure list act on them.
    for (const id of ["r-0010", "r-0148", "r-0149"])
      expect(await ctx.redis.exists(keys.row("b", id))).toBe(1);

    expect(await allRows("b", rows)).toEqual(before);
    // The poll's read of a row's state alone finds a frozen row in its page too.
    for (const i of [0, 10, 63, 64, 147, 149])
      expect(await ctx.ledger.getRowState("b", rows[i]!.id)).toEqual(stateOf(before[i]!));
    expect(await results("b")).toBe(csvBefore);
    expect((await ctx.ledger.rowWindow("b", { limit: 200 }))?.rows).toEqual(before);

    const pageBytes = await bytesOf([0, 1, 2].map((page) => keys.frozen("b", page)));
    expect(pageBytes).toBeLessThan(rowBytes * 0.35);
    // Nothing left to do: a second walk passes nothing.
    expect(await freeze()).toEqual(walked(0, 0, true));
  });

  it("stops at a page with a row still moving or young, and resumes there", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 130);
    for (const row of rows) if (row.id !== "r-0070") await archive("b", row.id);
    now += SETTLE + 1;
    // r-0070 (page 1) is still queued: page 0 is frozen, the walk waits at page 1.
    expect(await freeze()).toEqual(walked(64, 1, false));
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBe("64");
    expect(await ctx.redis.exists(keys.row("b", "r-0071"))).toBe(1);

    // Archived now: young, the page still waits; a settle period later it goes, and the rest.
    await archive("b", "r-0070");
    expect(await freeze()).toMatchObject({ frozen: 0, complete: false });
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(66, 2, true));
    expect((await ctx.ledger.getRow("b", "r-0070"))?.status).toBe("archived");
  });

  it("leaves a batch's last page alone until the batch has finished (rows may still be added to it)", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 70);
    for (const row of rows.slice(0, 69)) await archive("b", row.id);
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(64, 1, false));
    await archive("b", "r-0069");
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(6, 1, true));
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBe("128");
  });

  it("passes rows parked over a window-managed batch's budget and rows without an updatedAt, which keep their keys", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = Array.from({ length: 128 }, (_, i) => newRow(i));
    await ctx.ledger.addRows("b", rows, { submitWindow: 500 });
    await ctx.redis.hset(keys.batch("b"), "fedSeq", "128", "held", "0");
    for (const row of rows) if (!["r-0003", "r-0004"].includes(row.id)) await archive("b", row.id);
    // r-0003 waits for budget (may wait for days); r-0004 is archived but lacks updatedAt.
    await ctx.redis.hset(keys.row("b", "r-0003"), "waitingBudget", "1");
    await archive("b", "r-0004");
    await ctx.redis.hdel(keys.row("b", "r-0004"), "updatedAt");
    now += SETTLE + 1;
    expect(await freeze()).toMatchObject({ frozen: 126, pages: 2 });
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBe("128");
    expect(await ctx.redis.exists(keys.row("b", "r-0003"), keys.row("b", "r-0004"))).toBe(2);
    expect((await ctx.ledger.getRow("b", "r-0004"))?.status).toBe("archived");
  });

  it("waits at a parked row of a batch without a submit window (nothing bounds how many there are)", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 128);
    for (const row of rows) if (row.id !== "r-0003") await archive("b", row.id);
    await ctx.redis.hset(keys.row("b", "r-0003"), "waitingBudget", "1");
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(0, 0, false));
  });

  it("waits at the first row the submit window holds back: a batch stopped on its budget freezes once it goes on", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = Array.from({ length: 192 }, (_, i) => newRow(i));
    await ctx.ledger.addRows("b", rows, { submitWindow: 64 });
    // The first 64 fed and archived, the rest held (the budget stopped the feed, say).
    await ctx.redis.hset(keys.batch("b"), "fedSeq", "64", "held", "128");
    for (const row of rows.slice(0, 64)) await archive("b", row.id);
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(64, 1, false));
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBe("64");
    // Fed and archived later: frozen then, not left behind the cursor in their keys.
    await ctx.redis.hset(keys.batch("b"), "fedSeq", "192", "held", "0");
    for (const row of rows.slice(64)) await archive("b", row.id);
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(128, 2, true));
  });

  it("waits a settle period after the batch finished before passing its last page; a walk passes maxPages at most", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 200);
    for (const row of rows) if (row.id !== "r-0150") await archive("b", row.id);
    now += SETTLE + 1;
    expect(await freeze({ maxPages: 1 })).toEqual(walked(64, 1, false));
    // Page 1 goes; page 2 waits for r-0150, still queued with its job.
    expect(await freeze()).toEqual(walked(64, 1, false));
    // Cancelled: the batch finishes now. Page 2 goes (the cancelled row keeps its keys); the
    // last page (192-199, rows long archived) waits, as the batch finished under a settle period ago.
    await ctx.ledger.transition("b", "r-0150", { to: "cancelled" });
    expect(await freeze()).toEqual(walked(63, 1, false));
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBe("192");
    // A row appended now lands on that page, still open: it is a new row, with its job due.
    expect(await ctx.ledger.addRows("b", [newRow(200)])).toEqual(["new"]);
    now += SETTLE + 1;
    expect(await freeze()).toEqual(walked(0, 0, false));
  });

  it("a page frozen after the batch's expiry was set takes the rows' expiry", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 64);
    for (const row of rows) await archive("b", row.id);
    expect(await ctx.ledger.expireFinished("b", 86_400_000)).toBe(true);
    const rowExpiry = Number(await ctx.redis.call("PEXPIRETIME", keys.row("b", "r-0000")));
    expect(rowExpiry).toBeGreaterThan(0);
    now += SETTLE + 1;
    expect(await freeze()).toMatchObject({ frozen: 64, complete: true });
    const pageExpiry = Number(await ctx.redis.call("PEXPIRETIME", keys.frozen("b", 0)));
    // PTTL is read in the script: the same instant within a few ms.
    expect(Math.abs(pageExpiry - rowExpiry)).toBeLessThan(1_000);
  });

  it("re-enqueueing frozen rows adds nothing: no new row, no job due, the frozen record kept", async () => {
    const rows = await addBatch("b", 64);
    for (const row of rows) await archive("b", row.id);
    now += SETTLE + 1;
    await freeze();
    const before = await ctx.ledger.getBatch("b");
    const outcomes = await ctx.ledger.addRows("b", rows);
    expect(new Set(outcomes)).toEqual(new Set(["duplicate"]));
    const after = await ctx.ledger.getBatch("b");
    expect(after).toMatchObject({
      total: 64,
      archived: 64,
      queued: 0,
      creditsEstimated: before?.creditsEstimated,
    });
    expect((await ctx.ledger.getRow("b", "r-0005"))?.status).toBe("archived");
  });

  it("a money script or a move on a frozen row changes nothing", async () => {
    const rows = await addBatch("b", 64);
    for (const row of rows) await archive("b", row.id);
    now += SETTLE + 1;
    await freeze();
    const before = await ctx.ledger.getBatch("b");
    // As for a purged row: the money scripts find no row and refuse (row_missing), counting nothing.
    await expect(ctx.ledger.settleCredits("b", "r-0003", 6, "another-task")).rejects.toThrow(
      /no row b\/r-0003/,
    );
    // The row's own task (the one archiveRow recorded) and a release refuse the same way.
    await expect(ctx.ledger.settleCredits("b", "r-0003", 6, `task_r-0003_${"0".repeat(12)}`)).rejects.toThrow(
      /no row b\/r-0003/,
    );
    await expect(ctx.ledger.releaseReservation("b", "r-0003")).rejects.toThrow(/no row b\/r-0003/);
    await expect(ctx.ledger.keepUncertain("b", "r-0003", 6)).rejects.toThrow(/no row b\/r-0003/);
    const moved = await ctx.ledger.transition("b", "r-0003", { from: ["archiving"], to: "archived" });
    expect(moved.ok).toBe(false);
    expect(await ctx.ledger.getBatch("b")).toEqual(before);
    expect(await ctx.redis.exists(ledgerKeys(ctx.prefix).row("b", "r-0003"))).toBe(0);
  });

  it("an archived row holding a task counted uncertain keeps its keys (its charge may still be settled)", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 64);
    for (const row of rows) await archive("b", row.id);
    await ctx.ledger.keepUncertain("b", "r-0007", 6, "lost-task");
    now += SETTLE + 1;
    expect(await freeze()).toMatchObject({ frozen: 63, complete: true });
    expect(await ctx.redis.exists(keys.row("b", "r-0007"))).toBe(1);
    expect(await ctx.ledger.settleCredits("b", "r-0007", 6, "lost-task")).toBe("settled");
  });

  it("the script applies nothing when the cursor, the page or a row changed since they were read", async () => {
    const keys = ledgerKeys(ctx.prefix);
    const rows = await addBatch("b", 64);
    for (const row of rows) await archive("b", row.id);
    const hash = await ctx.redis.hgetall(keys.row("b", "r-0000"));
    const run = (cursor: string, updatedAt: string) =>
      freezeScript.run(
        ctx.redis,
        [keys.batch("b"), keys.frozen("b", 0), keys.row("b", "r-0000"), keys.body("b", "r-0000")],
        [cursor, "64", encodeFrozenPage([{ id: "r-0000", hash, body: "x" }]), updatedAt],
      );
    expect(await run("", String(Number(hash.updatedAt) - 1))).toBe(0);
    expect(await run("0", hash.updatedAt!)).toBe(0);
    expect(await ctx.redis.exists(keys.frozen("b", 0), keys.row("b", "r-0000"))).toBe(1);
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBeNull();
    expect(await run("", hash.updatedAt!)).toBe(1);
    expect(await ctx.redis.exists(keys.frozen("b", 0), keys.row("b", "r-0000"))).toBe(1);
    expect(await ctx.redis.hget(keys.batch("b"), "frozenTo")).toBe("64");
  });
});
