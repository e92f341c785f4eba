/**
 * The reconciler's "now" is the Redis server's: the rows' stamps (when each entered its state,
 * ended, was updated) come from the scripts' TIME, so a worker or an operator's machine whose own
 * clock lags the server's by more than the settle time would find every row "too young" and
 * repair none (and one that runs ahead would treat a row that just moved as left behind).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { reconcileNow } from "../../src/app/reconciler.js";
import { silentLogger } from "../../src/core/logger.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { serverClock } from "../../src/redis/server-clock.js";
import { freezeAll } from "../../src/worker/housekeep.js";
import { ledgerQueuesContext } from "../helpers/ledger-context.js";
import { moveRow, newRow } from "./ops-helpers.js";

const MINUTE = 60_000;
// No clock: the ledger's scripts stamp rows with the server's TIME, as in a deployment.
const ctx = ledgerQueuesContext();

/** This machine's clock, five minutes behind the server's. */
const lagging = () => Date.now() - 5 * MINUTE;

async function rowLeftWithoutItsJob(): Promise<void> {
  await ctx.ledger.addRows("b", [newRow("r")]);
  await ctx.ledger.transition("b", "r", { to: "submitted", addTaskId: "task-r" });
  // Settled: the reconciler's settle time below is 200 ms.
  await sleep(300);
}

const sweep = (clock: { now(): number; sync?(): Promise<void> }) =>
  reconcileNow(
    { redis: ctx.redis, ledger: ctx.ledger, queues: ctx.queues, clock, log: silentLogger(), settleMs: 200 },
    "b",
  );

describe("the reconciler's clock", () => {
  it("a sweep on a machine whose clock lags the server's still repairs a row left without its job", async () => {
    await rowLeftWithoutItsJob();
    expect(await sweep(serverClock(ctx.redis, lagging))).toMatchObject({ checked: 1, requeued: 1 });
    expect((await ctx.queues.queues.poll.getJobs(["wait", "delayed", "prioritized"])).length).toBe(1);
  });

  it("on that machine's own clock the row looks too young: nothing would be repaired", async () => {
    await rowLeftWithoutItsJob();
    expect(await sweep({ now: lagging })).toMatchObject({ checked: 0, requeued: 0 });
  });

  it("freezing compares the rows' stamps with the server's clock too: a worker ahead of it does not freeze a row archived just now", async () => {
    await ctx.ledger.addRows("b", [newRow("r")]);
    await moveRow(ctx.ledger, "b", "r", "archived");
    const rowKey = ledgerKeys(ctx.prefix).row("b", "r");
    const ahead = () => Date.now() + 10 * MINUTE;
    const freeze = (clock: { now(): number }) =>
      freezeAll({ ledger: ctx.ledger, log: silentLogger(), clock }, MINUTE);
    // Synced, the row (and its finished batch) settled less than a minute ago: left as it is.
    const synced = serverClock(ctx.redis, ahead);
    await synced.sync();
    await freeze(synced);
    expect(await ctx.redis.exists(rowKey)).toBe(1);
    // On that machine's own clock it looked settled ten minutes ago, and was frozen at once.
    await freeze({ now: ahead });
    expect(await ctx.redis.exists(rowKey)).toBe(0);
  });
});
