/**
 * The submit window on a real Redis Cluster: add-rows.lua, feed.lua and transition.lua of a
 * window-managed batch, and the reconciler's walk that leaves held rows out, each stay in the
 * batch's slot (a CROSSSLOT error fails this test).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRedis } from "../../src/app/connections.js";
import { loadConfig } from "../../src/config/index.js";
import { createLedger } from "../../src/ledger/index.js";
import type { RedisClient } from "../../src/redis/script.js";
import { uniquePrefix } from "../helpers/redis.js";
import { startTestCluster, type TestCluster } from "../helpers/redis-cluster.js";

let cluster: TestCluster;
let redis: RedisClient;

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = await openRedis(loadConfig({ REDIS_CLUSTER_NODES: cluster.seeds }), { forWorker: true });
}, 60_000);

afterAll(async () => {
  await redis?.quit().catch(() => redis.disconnect());
  await cluster?.stop();
});

const newRow = (id: string) => ({
  id,
  line: 2,
  prompt: `prompt ${id}`,
  params: {},
  metadata: {},
  estimatedCredits: 4,
});

describe("the submit window on a Redis Cluster", () => {
  it("records held rows, feeds them, keeps held through moves and walks only fed rows, in each batch's slot", async () => {
    const ledger = createLedger(redis, { prefix: uniquePrefix("cluster-window") });
    for (const batch of ["w0", "w1", "w2", "w3"]) {
      const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
      expect(new Set(await ledger.addRows(batch, ids.map(newRow), { submitWindow: 4, priority: 9 }))).toEqual(
        new Set(["held"]),
      );
      const fed = await ledger.feedWindow(batch);
      expect(fed).toMatchObject({ priority: 9, more: false });
      expect(fed.fed.map(({ rowId }) => rowId)).toEqual(["r0", "r1", "r2", "r3"]);
      await ledger.transition(batch, "r0", { from: ["queued"], to: "submitted" });
      await ledger.transition(batch, "r1", { from: ["queued"], to: "submitted" });
      const low = await ledger.transition(batch, "r2", { from: ["queued"], to: "submitted" });
      expect(low.feed).toBe(true);
      expect((await ledger.feedWindow(batch)).fed.map(({ rowId }) => rowId)).toEqual(["r4", "r5", "r6"]);
      await ledger.transition(batch, "r11", { from: ["queued"], to: "cancelled" });
      expect(await ledger.getBatch(batch)).toMatchObject({ queued: 8, held: 4, fedSeq: 7 });
      const walked: string[] = [];
      for await (const page of ledger.statePages(batch, "queued", { skipHeld: true, skipParked: true }))
        walked.push(...page.map(({ row }) => row.id));
      expect(walked.sort()).toEqual(["r3", "r4", "r5", "r6"]);
      expect(await ledger.purge(batch)).toBe(12);
    }
  });
});
