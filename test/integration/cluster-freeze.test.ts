/**
 * Frozen pages (ledger/freeze.ts) on a real Redis Cluster (three masters, three replicas on
 * loopback): the freezer's reads and script, the readers of a frozen row, a re-enqueue, the
 * expiry walk and purge each stay in the batch's slot. A CROSSSLOT (server) or a "same slots
 * allocation group" (client) error fails these tests; no node may count a CROSSSLOT either.
 * Its own cluster: one costs about 2.5 s to start on this machine.
 */
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import {
  createLedger,
  type Ledger,
  ledgerKeys,
  type NewRow,
  type RowRecord,
} from "../../src/ledger/index.js";
import { serverClock } from "../../src/redis/server-clock.js";
import { archiveRow } from "../helpers/archived-row.js";
import { uniquePrefix } from "../helpers/redis.js";
import { clusterContext } from "../helpers/redis-cluster.js";

const ctx = clusterContext();

const ROWS = 130; // pages 0 and 1 full, page 2 the batch's last (two rows)
const SETTLE = 60_000;
const DAY = 86_400_000;
// Real time as the base: the expiry walk sets PEXPIREAT from finishedAt, which must lie ahead.
let now = Date.now();
const clock = { now: () => now };

function newRow(i: number): NewRow {
  return {
    id: `r-${String(i).padStart(4, "0")}`,
    line: i + 2,
    prompt: `Row ${i}: a misty harbour lighthouse at dusk, oil painting, soft light, study ${i}`,
    params: { image_size: ["square", "portrait_4_3"][i % 2], seed: i },
    metadata: { sku: `sku-${i}` },
    estimatedCredits: 6,
  };
}

/** One row through the writes a worker makes, to archived. */
function archive(ledger: Ledger, batch: string, id: string): Promise<void> {
  return archiveRow(ledger, batch, id, now, `task_${batch}_${id}`);
}

/** CROSSSLOT errors every node has answered so far (INFO errorstats). */
async function crossSlotErrors(): Promise<number> {
  let total = 0;
  for (const port of ctx.cluster.ports) {
    const node = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 1 });
    node.on("error", () => {});
    try {
      await node.connect();
      const line = (await node.info("errorstats")).match(/errorstat_CROSSSLOT:count=(\d+)/);
      total += Number(line?.[1] ?? 0);
    } finally {
      node.disconnect();
    }
  }
  return total;
}

/** Every key in the batch's hash tag, by SCAN of the master serving it (one slot). */
async function batchKeys(prefix: string, batch: string): Promise<string[]> {
  const keys = ledgerKeys(prefix);
  const port = await ctx.cluster.masterOf(keys.batch(batch));
  const node = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 1 });
  node.on("error", () => {});
  const found: string[] = [];
  try {
    await node.connect();
    let cursor = "0";
    do {
      const [next, page] = await node.scan(cursor, "MATCH", `${keys.batchRoot(batch)}*`, "COUNT", 1000);
      found.push(...page);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    node.disconnect();
  }
  return found;
}

async function allRows(ledger: Ledger, batch: string, rows: readonly NewRow[]) {
  return Promise.all(rows.map((row) => ledger.getRow(batch, row.id)));
}

async function listed(ledger: Ledger, batch: string): Promise<RowRecord[]> {
  const all: RowRecord[] = [];
  for await (const row of ledger.rows(batch)) all.push(row);
  return all;
}

describe("frozen pages on a Redis Cluster", () => {
  it("freezes two batches in their slots: rows read the same, a re-enqueue adds nothing, the pages expire and purge", {
    timeout: 60_000,
  }, async () => {
    const prefix = uniquePrefix("cl-freeze");
    const ledger = createLedger(ctx.redis, { prefix, clock });
    const keys = ledgerKeys(prefix);
    const batches = ["fa", "fb"];
    const rows = Array.from({ length: ROWS }, (_, i) => newRow(i));
    const crossSlotBefore = await crossSlotErrors();
    try {
      for (const batch of batches) {
        expect(new Set(await ledger.addRows(batch, rows))).toEqual(new Set(["new"]));
        for (const row of rows) await archive(ledger, batch, row.id);
        expect(await ledger.getBatch(batch)).toMatchObject({ total: ROWS, archived: ROWS });
        expect((await ledger.getBatch(batch))?.finishedAt).toBeDefined();
      }
      const before = new Map<string, { get: unknown[]; list: RowRecord[] }>();
      for (const batch of batches)
        before.set(batch, { get: await allRows(ledger, batch, rows), list: await listed(ledger, batch) });

      now += SETTLE + 1;
      for (const batch of batches) {
        expect(await ledger.freeze(batch, { settleMs: SETTLE })).toEqual({
          frozen: ROWS,
          pages: 3,
          complete: true,
        });
        expect(await ctx.redis.hmget(keys.batch(batch), "frozenTo", "nextSeq")).toEqual([
          "192",
          String(ROWS),
        ]);
        for (const row of rows)
          expect(await ctx.redis.exists(keys.row(batch, row.id), keys.body(batch, row.id)), row.id).toBe(0);
        for (const page of [0, 1, 2]) expect(await ctx.redis.exists(keys.frozen(batch, page))).toBe(1);
      }

      for (const batch of batches) {
        const { get, list } = before.get(batch)!;
        expect(await allRows(ledger, batch, rows)).toEqual(get);
        expect(await listed(ledger, batch)).toEqual(list);
        expect(list).toHaveLength(ROWS);
      }

      // A re-enqueue of the same rows finds each frozen row through the order zset.
      for (const batch of batches) {
        const summary = await ledger.getBatch(batch);
        expect(new Set(await ledger.addRows(batch, rows))).toEqual(new Set(["duplicate"]));
        expect(await ledger.getBatch(batch)).toEqual(summary);
        expect(await ctx.redis.exists(keys.row(batch, "r-0005"))).toBe(0);
      }

      // No ledger TTL of its own: no expiry until asked, then every page gets the batch's.
      for (const batch of batches) {
        for (const page of [0, 1, 2]) expect(await ctx.redis.pttl(keys.frozen(batch, page))).toBe(-1);
        expect(await ledger.expireFinished(batch, DAY)).toBe(true);
        const at = await ctx.redis.pexpiretime(keys.batch(batch));
        expect(at).toBeGreaterThan(Date.now() + DAY - 120_000);
        for (const page of [0, 1, 2]) expect(await ctx.redis.pexpiretime(keys.frozen(batch, page))).toBe(at);
      }

      // Purge: every row counted (each only in a page), no key of the batch left, the other kept.
      expect(await ledger.purge("fa")).toBe(ROWS);
      expect(await batchKeys(prefix, "fa")).toEqual([]);
      expect(await ledger.getBatch("fa")).toBeUndefined();
      expect((await batchKeys(prefix, "fb")).length).toBeGreaterThan(0);
      expect(await ledger.getRow("fb", "r-0129")).toEqual(before.get("fb")!.get[ROWS - 1]);
      expect(await ledger.purge("fb")).toBe(ROWS);
      expect(await batchKeys(prefix, "fb")).toEqual([]);
      expect(await ledger.listBatches()).toEqual([]);
      expect(await crossSlotErrors()).toBe(crossSlotBefore);
    } finally {
      for (const batch of batches) await ledger.purge(batch).catch(() => 0);
    }
  });

  it("the sweep's server clock asks every master for TIME (each batch's rows are stamped by its own slot's master)", async () => {
    const masters = await ctx.cluster.masters();
    const before = await Promise.all(masters.map((port) => ctx.cluster.calls(port, "time")));
    const clock = serverClock(ctx.redis);
    await clock.sync();
    const after = await Promise.all(masters.map((port) => ctx.cluster.calls(port, "time")));
    expect(after.map((n, i) => n - before[i]!)).toEqual(masters.map(() => 1));
    expect(Math.abs(clock.now() - Date.now())).toBeLessThan(5_000);
  });
});
