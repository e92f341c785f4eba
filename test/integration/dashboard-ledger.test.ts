import { describe, expect, it } from "vitest";
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
