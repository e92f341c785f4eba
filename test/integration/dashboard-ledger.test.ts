import { describe, expect, it } from "vitest";
import { readMatches } from "../../src/dashboard/gallery.js";
import { createLedger, ledgerKeys } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";
import { moveRow, newRow } from "./ops-helpers.js";

const MINUTE = 60_000;
let now = Date.UTC(2026, 0, 1, 12, 0, 0);
const ctx = ledgerContext({ label: "dash-ledger", clock: { now: () => now } });

describe("the ledger's reads for the dashboard", () => {
  it("counts archived rows and settled credits per minute in the scripts that move them", async () => {
    await ctx.ledger.addRows(
      "b",
      ["r1", "r2", "r3", "r4"].map((id) => newRow(id)),
    );
    await moveRow(ctx.ledger, "b", "r1", "archived", { spent: 8 });
    await moveRow(ctx.ledger, "b", "r2", "archived", { spent: 8 });
    now += 2 * MINUTE;
    await moveRow(ctx.ledger, "b", "r3", "archived", { spent: 4.5 });
    await moveRow(ctx.ledger, "b", "r4", "failed");
    // Settling the same task again counts nothing (settle's once-per-task guard covers the chart).
    await ctx.ledger.settleCredits("b", "r3", 4.5, "task-r3");

    const minutes = await ctx.ledger.progress("b", { endAt: now, minutes: 60 });
    const start = Date.UTC(2026, 0, 1, 12, 0, 0);
    expect(minutes).toEqual([
      { at: start, archived: 2, credits: 16 },
      { at: start + 2 * MINUTE, archived: 1, credits: 4.5 },
    ]);
    // Only the window's minutes are read (an HMGET of them, not the whole hash).
    expect(await ctx.ledger.progress("b", { endAt: now, minutes: 2 })).toEqual([
      { at: start + 2 * MINUTE, archived: 1, credits: 4.5 },
    ]);
    expect(await ctx.ledger.progress("b", { endAt: now + 60 * MINUTE, minutes: 60 })).toEqual([]);
    await expect(ctx.ledger.progress("b", { endAt: now, minutes: 0 })).rejects.toThrow(RangeError);
    // One of the batch's side keys: no expiry of its own while the batch is open, gone with a purge.
    const key = `${ledgerKeys(ctx.prefix).batch("b")}:progress`;
    expect(await ctx.redis.pttl(key)).toBe(-1);
    await ctx.ledger.purge("b");
    expect(await ctx.redis.exists(key)).toBe(0);
  });

  it("a late settle on a batch set to expire gives the progress hash it makes the batch's expiry", async () => {
    // Redis's own clock: the expiry is set from finishedAt, which must be now.
    const expiring = createLedger(ctx.redis, { prefix: ctx.prefix, ttlMs: 86_400_000 });
    await expiring.addRows("late", [newRow("x")]);
    await moveRow(expiring, "late", "x", "failed");
    const key = `${ledgerKeys(ctx.prefix).batch("late")}:progress`;
    expect(await ctx.redis.exists(key)).toBe(0);
    expect(await ctx.redis.pttl(ledgerKeys(ctx.prefix).batch("late"))).toBeGreaterThan(0);
    await expiring.settleCredits("late", "x", 3, "task-x");
    const ttl = await ctx.redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(86_400_000);
  });

  it("a state filter finds a big batch's few failed rows on the first page, through the failed index", async () => {
    const ids = Array.from({ length: 3_000 }, (_, i) => `row-${String(i).padStart(4, "0")}`);
    await ctx.ledger.addRows(
      "huge",
      ids.map((id) => newRow(id)),
    );
    const failed = ["row-2990", "row-2500", "row-2995", "row-2700"];
    for (const id of failed) await moveRow(ctx.ledger, "huge", id, "failed", { error: "bad luck" });
    await moveRow(ctx.ledger, "huge", "row-2800", "generating");
    const query = { filter: "failed", search: "", order: "manifest" } as const;
    const first = await readMatches(ctx.ledger, "huge", query, 24);
    expect(first.rows.map((r) => r.id)).toEqual(["row-2500", "row-2700", "row-2990", "row-2995"]);
    expect(first.scanned).toBe(4);
    expect(first.next).toBeUndefined();
    // Paged by the same seq cursor, either way, and searched.
    const two = await readMatches(ctx.ledger, "huge", query, 2);
    expect(two.rows.map((r) => r.id)).toEqual(["row-2500", "row-2700"]);
    const rest = await readMatches(ctx.ledger, "huge", { ...query, after: two.next! }, 24);
    expect(rest.rows.map((r) => r.id)).toEqual(["row-2990", "row-2995"]);
    const latest = await readMatches(ctx.ledger, "huge", { ...query, order: "latest" }, 3);
    expect(latest.rows.map((r) => r.id)).toEqual(["row-2995", "row-2990", "row-2700"]);
    const searched = await readMatches(ctx.ledger, "huge", { ...query, search: "299" }, 24);
    expect(searched.rows.map((r) => r.id)).toEqual(["row-2990", "row-2995"]);
    const busy = await readMatches(ctx.ledger, "huge", { ...query, filter: "in-progress" }, 24);
    expect(busy.rows.map((r) => r.id)).toEqual(["row-2800"]);
    // A batch made before the state indexes: the manifest walk, within its budget.
    await ctx.redis.hdel(ledgerKeys(ctx.prefix).batch("huge"), "stateIndexed");
    const walked = await readMatches(ctx.ledger, "huge", query, 24);
    expect(walked.rows).toEqual([]);
    expect(walked.scanned).toBe(2_000);
  });

  it("pages rows by seq cursor in manifest order and reversed, and finds a row's seq", async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `row-${String(i).padStart(2, "0")}`);
    await ctx.ledger.addRows(
      "big",
      ids.map((id) => newRow(id)),
    );
    const seen: string[] = [];
    let after: number | undefined;
    for (;;) {
      const window = await ctx.ledger.rowWindow("big", {
        limit: 10,
        ...(after === undefined ? {} : { after }),
      });
      seen.push(...window.rows.map((r) => r.id));
      if (window.next === undefined) break;
      after = window.next;
    }
    expect(seen).toEqual(ids);

    const last = await ctx.ledger.rowWindow("big", { limit: 3, reverse: true });
    expect(last.rows.map((r) => r.id)).toEqual(["row-24", "row-23", "row-22"]);
    const before = await ctx.ledger.rowWindow("big", { limit: 2, reverse: true, after: last.next! });
    expect(before.rows.map((r) => r.id)).toEqual(["row-21", "row-20"]);

    const seq = await ctx.ledger.rowSeq("big", "row-05");
    const next = await ctx.ledger.rowWindow("big", { limit: 1, after: seq! });
    expect(next.rows[0]?.id).toBe("row-06");
    expect(await ctx.ledger.rowSeq("big", "nope")).toBeUndefined();
    await expect(ctx.ledger.rowWindow("big", { limit: 0 })).rejects.toThrow(/limit/);
  });
});
