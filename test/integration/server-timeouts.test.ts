/**
 * The dashboard and the admin port close a socket whose request headers never finish within
 * seconds: Node checks its timeouts every 30 s unless told otherwise, so a half-sent request held
 * a socket up to a minute (a cheap way to pile up sockets). (The webhook receiver's, 5 s, is in
 * webhook-receiver.test.ts.)
 */
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { QueueSet } from "../../src/bull/queues.js";
import { silentLogger } from "../../src/core/logger.js";
import { startDashboard } from "../../src/dashboard/server.js";
import { createLedger } from "../../src/ledger/index.js";
import { startAdminServer } from "../../src/metrics/admin-server.js";
import { halfSentHeldFor } from "../helpers/half-sent.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

describe("half-sent requests", () => {
  it("are closed by the dashboard and the admin port within their 10 s header time, not half a minute later", async () => {
    const redis = testRedis();
    const prefix = uniquePrefix("timeouts");
    const queues = new QueueSet({ connection: redis, queuePrefix: prefix });
    const dashboard = await startDashboard({
      port: 0,
      queuePrefix: prefix,
      ledger: createLedger(redis, { prefix }),
      queues: queues.queues,
      fleet: async () => ({ paused: null, accounts: [] }),
      ping: () => redis.ping(),
    });
    const admin = await startAdminServer({ port: 0, registry: new Registry(), log: silentLogger() });
    try {
      const held = await Promise.all([
        halfSentHeldFor(Number(new URL(dashboard.url).port)),
        halfSentHeldFor(admin.port),
      ]);
      for (const ms of held) expect(ms).toBeLessThan(13_000);
    } finally {
      await admin.close();
      await dashboard.close();
      await queues.close();
      await cleanupPrefix(redis, prefix);
      await redis.quit();
    }
  }, 30_000);
});
