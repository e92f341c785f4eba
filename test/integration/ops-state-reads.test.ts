import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cancelBatch } from "../../src/commands/cancel.js";
import { retryBatch } from "../../src/commands/retry.js";
import { createFailureReader } from "../../src/dashboard/failures.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

/**
 * Issue 10: `retry`, `cancel` and the dashboard's failure list read the rows in the state they
 * need (from the ledger's state indexes), not the batch. A batch of 20,000 rows, 10 failed and 10
 * queued, the rest archived: each of them reads about 10 row hashes, counted on the wire.
 */

const ROWS = 20_000;
const FEW = 10;
const clock = { now: () => Date.now() };

let fx: OpsFixture;
/** Commands that read a ledger row hash, counted from when `reads.reset()` was called. */
const reads = { count: 0, reset: () => (reads.count = 0) };

beforeAll(async () => {
  fx = opsFixture();
  // A ledger row key of any batch of the prefix: `{<prefix>:<batch>}:ledger:row:<id>`.
  const isRowKey = (key: string) => key.startsWith(`{${fx.prefix}:`) && key.includes("}:ledger:row:");
  const send = fx.redis.sendCommand.bind(fx.redis);
  // Every command goes through sendCommand, pipelined ones included.
  fx.redis.sendCommand = ((command: { name: string; args: unknown[] }, ...rest: unknown[]) => {
    const key = command.args[0];
    if (["hgetall", "hget", "hmget"].includes(command.name) && typeof key === "string" && isRowKey(key))
      reads.count++;
    return (send as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof fx.redis.sendCommand;

  const ids = Array.from({ length: ROWS }, (_, i) => `r${i}`);
  await fx.ledger.addRows(
    "big",
    ids.map((id) => newRow(id)),
  );
  // Spread the few rows over the batch; the rest archived (one transition each, many in flight).
  const failed = new Set(ids.filter((_, i) => i % (ROWS / FEW) === 7));
  const queued = new Set(ids.filter((_, i) => i % (ROWS / FEW) === 3));
  const rest = ids.filter((id) => !failed.has(id) && !queued.has(id));
  for (let i = 0; i < rest.length; i += 1000) {
    await Promise.all(
      rest.slice(i, i + 1000).map((id) => fx.ledger.transition("big", id, { to: "archived" })),
    );
  }
  for (const id of failed) await moveRow(fx.ledger, "big", id, "failed", { error: `boom ${id}` });
  expect(await fx.ledger.getBatch("big")).toMatchObject({ failed: FEW, queued: FEW, total: ROWS });
}, 120_000);

afterAll(async () => {
  await fx.close();
});

describe("operations on a few rows of a large batch read those rows only", () => {
  it("the dashboard's failure list reads the failed rows it shows", async () => {
    reads.reset();
    const reader = createFailureReader({ ledger: fx.ledger, limit: FEW, clock });
    const rows = await reader.read("big", FEW);
    expect(rows).toHaveLength(FEW);
    // Manifest order.
    expect(rows.map((r) => Number(r.rowId.slice(1)))).toEqual(
      [...rows.map((r) => Number(r.rowId.slice(1)))].sort((a, b) => a - b),
    );
    expect(reads.count).toBeLessThanOrEqual(FEW + 2);
  });

  it("retry reads the failed rows, not the batch", async () => {
    reads.reset();
    const report = await retryBatch(
      { ledger: fx.ledger, queues: fx.queues, clock, out: new Collector(), queuePrefix: fx.prefix },
      "big",
    );
    expect(report).toEqual({ repolled: FEW, requeued: 0, skipped: 0 });
    expect(reads.count).toBeGreaterThanOrEqual(FEW);
    // Each failed row is read by the walk and once more under the retry's claim (another retry may
    // have moved it since the walk read it): twice the failed rows, never the batch.
    expect(reads.count).toBeLessThanOrEqual(2 * FEW + 2);
  });

  it("cancel reads the queued rows, not the batch", async () => {
    reads.reset();
    const report = await cancelBatch(
      { ledger: fx.ledger, queues: fx.queues, out: new Collector(), queuePrefix: fx.prefix },
      "big",
    );
    // The retried rows are submitted now: only the queued ones are cancelled.
    expect(report).toMatchObject({ cancelled: FEW, inFlight: FEW });
    expect(reads.count).toBeGreaterThanOrEqual(FEW);
    expect(reads.count).toBeLessThanOrEqual(FEW + 2);
  });
});
