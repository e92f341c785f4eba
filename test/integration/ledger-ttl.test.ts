import { describe, expect, it } from "vitest";
import { buildLedger } from "../../src/app/index.js";
import { withOps } from "../../src/cli/ops-context.js";
import { cancelBatch } from "../../src/commands/cancel.js";
import { loadConfig } from "../../src/config/index.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { redisPrefixContext } from "../helpers/ledger-context.js";
import { REDIS_URL } from "../helpers/redis.js";
import { Collector, moveRow, newRow } from "./ops-helpers.js";

const DAY = 86_400_000;
const ROWS = ["r1", "r2", "r3"];

const db = redisPrefixContext("ttl");

/**
 * PTTL of every existing ledger key of the batch: its hash, zsets and rows (task mappings have
 * their own TTL). Named rather than SCANned: the shared Redis may hold millions of other keys.
 */
async function batchTtls(batch: string, rowIds: readonly string[]): Promise<Record<string, number>> {
  const keys = ledgerKeys(db.prefix);
  const names = [
    keys.batch(batch),
    keys.order(batch),
    keys.unarchived(batch),
    ...rowIds.map((id) => keys.row(batch, id)),
  ];
  const ttls: Record<string, number> = {};
  for (const key of names) {
    const ttl = await db.redis.pttl(key);
    if (ttl !== -2) ttls[key.slice(keys.batchRoot(batch).length + 1)] = ttl;
  }
  return ttls;
}

function expectAllNear(ttls: Record<string, number>, ttlMs: number): void {
  expect(Object.keys(ttls).length).toBeGreaterThan(0);
  for (const [key, ttl] of Object.entries(ttls)) {
    expect(ttl, key).toBeLessThanOrEqual(ttlMs);
    expect(ttl, key).toBeGreaterThan(ttlMs - 60_000);
  }
}

describe("KIE_LEDGER_TTL", () => {
  it("a finished batch's keys expire KIE_LEDGER_TTL after it finishes, in the ledger the app builds", async () => {
    const ledger = buildLedger(db.redis, loadConfig({ KIE_QUEUE_PREFIX: db.prefix, KIE_LEDGER_TTL: "2d" }));
    await ledger.addRows(
      "b1",
      ROWS.map((id) => newRow(id)),
    );
    await moveRow(ledger, "b1", "r1", "archived");
    await moveRow(ledger, "b1", "r2", "failed");
    // Not finished yet: nothing expires.
    expect(Object.values(await batchTtls("b1", ROWS))).toEqual([-1, -1, -1, -1, -1]);

    await moveRow(ledger, "b1", "r3", "cancelled");
    const ttls = await batchTtls("b1", ROWS);
    expect(Object.keys(ttls).sort()).toEqual(["batch", "order", "row:r1", "row:r2", "row:r3"]);
    expectAllNear(ttls, 2 * DAY);
  });

  it("defaults to 30 days", async () => {
    const ledger = buildLedger(db.redis, loadConfig({ KIE_QUEUE_PREFIX: db.prefix }));
    await ledger.addRows("b1", [newRow("r1")]);
    await moveRow(ledger, "b1", "r1", "archived");
    expectAllNear(await batchTtls("b1", ["r1"]), 30 * DAY);
  });

  it("applies when an operator command finishes the batch (cancel of its last queued rows)", async () => {
    const config = loadConfig({ REDIS_URL, KIE_QUEUE_PREFIX: db.prefix, KIE_LEDGER_TTL: "36h" });
    const seed = buildLedger(db.redis, config);
    await seed.addRows("b1", [newRow("done"), newRow("waiting")]);
    await moveRow(seed, "b1", "done", "archived");
    expect((await batchTtls("b1", ["done", "waiting"])).batch).toBe(-1);

    await withOps(config, (ctx) =>
      cancelBatch(
        { ledger: ctx.ledger, queues: ctx.queues(), out: new Collector(), queuePrefix: db.prefix },
        "b1",
      ),
    );
    expectAllNear(await batchTtls("b1", ["done", "waiting"]), 36 * 3_600_000);
  });
});
