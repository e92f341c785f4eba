/**
 * The fetch watchdog's counting queues must not rewrite a queue's meta: BullMQ's Queue writes its
 * options there when it connects, and the events stream's maxLen (100 in queues.ts) would go back
 * to BullMQ's 10,000 (measured: ~800 B more per archived row).
 */
import { afterAll, describe, expect, it } from "vitest";
import { readyCounts } from "../../src/bull/fetch-watchdog.js";
import { QueueSet } from "../../src/bull/queues.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

const redis = testRedis();
const prefix = uniquePrefix();
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe("fetch watchdog counts", () => {
  it("leave the queues' events maxLen as queues.ts set it", async () => {
    const queues = new QueueSet({ connection: redis, queuePrefix: prefix });
    await queues.addSubmit({ batch: "b", rowId: "r1", resubmit: 0 });
    const meta = `{${prefix}:submit}:submit:meta`;
    expect(await redis.hget(meta, "opts.maxLenEvents")).toBe("100");
    const counts = readyCounts(redis, prefix);
    expect(await counts.ready("submit")).toBe(1);
    expect(await redis.hget(meta, "opts.maxLenEvents")).toBe("100");
    await counts.close();
    await queues.close();
  });
});
