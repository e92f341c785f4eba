import type { Queue } from "bullmq";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { purgeBatch } from "../../src/commands/purge.js";
import { Collector, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

/**
 * Issue 10: purge removes a batch's jobs a page of the queue at a time, never holding every job id
 * of the batch, and the pages close up behind the removed jobs without skipping any.
 */

const BIG = 2_500;
const OTHER = 1_200;

let fx: OpsFixture;

beforeEach(() => {
  fx = opsFixture();
});
afterEach(async () => {
  await fx.close();
});

describe("purge in pages", () => {
  it("removes 2,500 waiting jobs interleaved with another batch's, reading at most a page of ids at a time", async () => {
    await fx.ledger.addRows(
      "big",
      Array.from({ length: 10 }, (_, i) => newRow(`r${i}`)),
    );
    const submit = fx.queues.queues.submit;
    // Interleaved, so every page of the queue holds both batches' jobs.
    const jobs = Array.from({ length: BIG + OTHER }, (_, i) => {
      const batch = i % 3 === 2 && i / 3 < OTHER ? "other" : "big";
      return { name: "submit", data: {}, opts: { jobId: `${batch}/r${i}` } };
    });
    expect(jobs.filter((j) => j.opts.jobId.startsWith("big/"))).toHaveLength(BIG);
    await submit.addBulk(jobs);

    let largestRead = 0;
    const counting = {
      ...fx.queues.queues,
      submit: {
        getRanges: async (...args: Parameters<Queue["getRanges"]>) => {
          const ids = await submit.getRanges(...args);
          largestRead = Math.max(largestRead, ids.length);
          return ids;
        },
        getJobState: (id: string) => submit.getJobState(id),
        remove: (id: string) => submit.remove(id),
      },
    };
    const out = new Collector();
    const report = await purgeBatch(
      { ledger: fx.ledger, queues: counting, out, queuePrefix: fx.prefix },
      "big",
    );
    expect(report.jobs.submit).toEqual({ removed: BIG, byState: { waiting: BIG }, active: [] });
    expect(largestRead).toBeLessThanOrEqual(1_000);
    expect(out.lines()[0]).toBe(
      `batch big: 10 rows in the ledger (10 queued), ${BIG} jobs in the queues (submit ${BIG}, poll 0, archive 0) will be removed`,
    );
    expect(await submit.getJobCounts("wait")).toEqual({ wait: OTHER });
    const left = await submit.getRanges(["wait"], 0, -1, true);
    expect(left.every((id) => id.startsWith("other/"))).toBe(true);
  });
});
