import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ledgerKeys } from "../../src/ledger/index.js";
import { RESULT_FIELDS, writeResults } from "../../src/report/results.js";
import { Collector, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

/**
 * Issue 10: `results --format csv` reads each row once. The header's metadata columns are the ones
 * the ledger kept as rows were recorded (a column first seen in a late chunk included); a batch
 * recorded before columns were kept is still read twice, with the same output.
 */

const ROWS = 2_500;

let fx: OpsFixture;
/** HGETALLs of ledger rows, counted on the wire. */
let rowReads = 0;

beforeEach(() => {
  fx = opsFixture();
  // A ledger row key of any batch of the prefix: `{<prefix>:<batch>}:ledger:row:<id>`.
  const isRowKey = (key: string) => key.startsWith(`{${fx.prefix}:`) && key.includes("}:ledger:row:");
  const send = fx.redis.sendCommand.bind(fx.redis);
  fx.redis.sendCommand = ((command: { name: string; args: unknown[] }, ...rest: unknown[]) => {
    const key = command.args[0];
    if (command.name === "hgetall" && typeof key === "string" && isRowKey(key)) rowReads++;
    return (send as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof fx.redis.sendCommand;
  rowReads = 0;
});
afterEach(async () => {
  await fx.close();
});

/** Rows whose metadata columns appear late: `b` in the third chunk, `prompt` in the last row. */
function rowsWithLateColumns() {
  return Array.from({ length: ROWS }, (_, i) => {
    const metadata: Record<string, string> = { a: `a${i}` };
    if (i >= 2_100) metadata.b = `b${i}`;
    if (i === ROWS - 1) metadata.prompt = "a metadata column named like a field";
    return newRow(`r${i}`, { metadata });
  });
}

async function csv(batch: string): Promise<string> {
  const out = new Collector();
  expect(await writeResults({ ledger: fx.ledger }, batch, "csv", out)).toBe(ROWS);
  return out.text();
}

describe("results in one pass", () => {
  it("CSV reads each row once, with every metadata column in the header, late ones too", async () => {
    await fx.ledger.addRows("b1", rowsWithLateColumns());
    rowReads = 0;
    const text = await csv("b1");
    expect(rowReads).toBe(ROWS);
    const lines = text.split("\r\n");
    expect(lines[0]).toBe([...RESULT_FIELDS, "a", "b", "meta.prompt"].join(","));
    expect(lines[1]).toMatch(/^r0,.*,a0,,$/);
    expect(lines[ROWS]).toMatch(/^r2499,.*,a2499,b2499,a metadata column named like a field$/);
  });

  it("a batch recorded before the ledger kept its columns reads its rows twice, and writes the same file", async () => {
    await fx.ledger.addRows("b1", rowsWithLateColumns());
    const kept = await csv("b1");
    await fx.ledger.addRows("old", rowsWithLateColumns());
    // As an older version left it: no columns kept.
    const keys = ledgerKeys(fx.prefix);
    await fx.redis.hdel(keys.batch("old"), "columnsKept");
    await fx.redis.del(`${keys.batch("old")}:columns`);
    rowReads = 0;
    expect(await csv("old")).toBe(kept);
    expect(rowReads).toBe(2 * ROWS);
  });

  it("columns come in order of first appearance across several calls (appends)", async () => {
    await fx.ledger.addRows("b1", [newRow("x", { metadata: { z: "1" } })]);
    await fx.ledger.addRows("b1", [newRow("y", { metadata: { y: "2", z: "3" } })]);
    const out = new Collector();
    await writeResults({ ledger: fx.ledger }, "b1", "csv", out);
    expect(out.text().split("\r\n")[0]).toBe([...RESULT_FIELDS, "z", "y"].join(","));
  });
});
