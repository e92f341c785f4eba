/**
 * A row archived inline (issue 10) sits in `archiving` with no archive job while its poll job
 * runs the archive: the reconciler must leave it alone, as it leaves any archiving row whose poll
 * job is live, and give it a poll only once that job is gone.
 */
import { randomUUID } from "node:crypto";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { beforeEach, describe, expect, it } from "vitest";
import { bullPrefix, type Stage } from "../../src/worker/jobs.js";
import { reconcileBatch } from "../../src/worker/reconcile.js";
import { ledgerQueuesContext } from "../helpers/ledger-context.js";
import { reconcileDeps } from "../helpers/reconcile-deps.js";
import { REDIS_URL } from "../helpers/redis.js";
import { newRow } from "./ops-helpers.js";

const MINUTE = 60_000;
let now: number;
const clock = { now: () => now };
const ctx = ledgerQueuesContext({ clock });
beforeEach(() => {
  now = Date.now();
});

async function jobIds(stage: Stage): Promise<string[]> {
  const jobs = await ctx.queues.queues[stage].getJobs(["wait", "delayed", "prioritized", "active"]);
  return jobs.map((job) => job.id!).sort();
}

describe("the reconciler and a row being archived in its poll job", () => {
  it("leaves the row alone while its poll job is active; gives it a poll once that job is gone", async () => {
    await ctx.ledger.addRows("b", [newRow("a")]);
    await ctx.ledger.transition("b", "a", {
      to: "submitted",
      addTaskId: "task-a",
      set: { submittedAt: now },
    });
    await ctx.ledger.transition("b", "a", { to: "archiving", set: { completedAt: now } });
    await ctx.queues.addPoll(
      { batch: "b", rowId: "a", taskId: "task-a", resubmit: 0, submittedAt: now, checks: 3 },
      0,
    );
    // The poll job taken and held, as while it archives the row inline.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker("poll", null, { connection, prefix: bullPrefix(ctx.prefix, "poll") });
    try {
      const token = randomUUID();
      const job = await worker.getNextJob(token);
      expect(job?.id).toBe("b/a");
      now += 2 * MINUTE;
      const report = await reconcileBatch(reconcileDeps(ctx, clock, 10), "b");
      expect(report).toMatchObject({ checked: 1, requeued: 0, failed: 0 });
      expect(await jobIds("archive")).toEqual([]);
      expect(await jobIds("poll")).toEqual(["b/a"]);

      // The job ended without archiving (a crash would stall it back instead): now it is repaired.
      await job!.moveToCompleted(undefined, token, false);
      const after = await reconcileBatch(reconcileDeps(ctx, clock, 10), "b");
      expect(after).toMatchObject({ requeued: 1 });
      expect(await jobIds("poll")).toEqual(["b/a"]);
    } finally {
      await worker.close();
      await connection.quit();
    }
  });
});
