import { beforeEach, describe, expect, it } from "vitest";
import type { NewRow } from "../../src/ledger/index.js";
import { ledgerContext } from "../helpers/ledger-context.js";

/**
 * ledger.drainState: the walk `retry` and `cancel` use, which move rows out of the state they walk.
 * Every row in the state when the walk began is visited once, whether the caller moves it out or
 * leaves it, even when hundreds share one index score; a row that comes back later is not.
 */

const ROWS = 1_200;
const ids = Array.from({ length: ROWS }, (_, i) => `r${i}`);

function newRow(id: string): NewRow {
  return { id, line: 2, prompt: `prompt ${id}`, params: {}, metadata: {}, estimatedCredits: 8 };
}

// One fixed clock: every row enters `failed` in the same millisecond (one score for all).
let now: number;
const ctx = ledgerContext({ label: "walk", clock: { now: () => now } });

beforeEach(async () => {
  now = 1_000_000;
  await ctx.ledger.addRows("b", ids.map(newRow));
  for (let i = 0; i < ROWS; i += 300) {
    await Promise.all(ids.slice(i, i + 300).map((id) => ctx.ledger.transition("b", id, { to: "failed" })));
  }
});

describe("drainState", () => {
  it.each([
    ["moves every row out", (_: number) => true],
    ["leaves every other row in place", (i: number) => i % 2 === 0],
    ["leaves every row in place", (_: number) => false],
  ])("visits each row once when the caller %s, all of them on one score", async (_, moveOut) => {
    const seen: string[] = [];
    now += 10;
    for await (const page of ctx.ledger.drainState("b", "failed", { pageSize: 500 })) {
      for (const { row } of page) {
        seen.push(row.id);
        if (moveOut(Number(row.id.slice(1)))) await ctx.ledger.transition("b", row.id, { to: "queued" });
      }
    }
    expect(seen).toHaveLength(ROWS);
    expect(new Set(seen).size).toBe(ROWS);
  });

  it("does not come back to a row that left and re-entered the state during the walk", async () => {
    const seen: string[] = [];
    for await (const page of ctx.ledger.drainState("b", "failed", { pageSize: 500 })) {
      for (const { row } of page) {
        seen.push(row.id);
        now += 1;
        // Retried, and failed again at once: a later entry, the next walk's.
        await ctx.ledger.transition("b", row.id, { to: "queued" });
        await ctx.ledger.transition("b", row.id, { to: "failed" });
      }
    }
    expect(seen).toHaveLength(ROWS);
    expect(new Set(seen).size).toBe(ROWS);
  });

  it("drainStateOnly: the same walk, each row's state alone (no prompt, params or metadata read)", async () => {
    const seen: string[] = [];
    now += 10;
    for await (const page of ctx.ledger.drainStateOnly("b", "failed", { pageSize: 500 })) {
      for (const { row } of page) {
        seen.push(row.id);
        expect(row.status).toBe("failed");
        expect("prompt" in row).toBe(false);
        if (Number(row.id.slice(1)) % 2 === 0) await ctx.ledger.transition("b", row.id, { to: "queued" });
      }
    }
    expect(seen).toHaveLength(ROWS);
    expect(new Set(seen).size).toBe(ROWS);
  });
});
