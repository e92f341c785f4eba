import { describe, expect, it } from "vitest";
import { STAGE_BACKOFF_TYPE, stageJobOptions, stageRetryDelay } from "../../src/bull/job-options.js";
import { jobDataOf, storedJobData, submitJobSchema } from "../../src/worker/jobs.js";

describe("a job's stored data", () => {
  it("a submit job stores only `creating`: its batch, row and resubmit are its id", () => {
    expect(storedJobData("submit", { batch: "b", rowId: "r", resubmit: 2 })).toEqual({});
    expect(storedJobData("submit", { batch: "b", rowId: "r", resubmit: 0, creating: 17 })).toEqual({
      creating: 17,
    });
    const poll = { batch: "b", rowId: "r", taskId: "t", resubmit: 0, submittedAt: 1, checks: 0 };
    expect(storedJobData("poll", poll)).toBe(poll);
  });

  it.each([
    ["the compact form", "b/r/r2", { creating: 17 }, { batch: "b", rowId: "r", resubmit: 2, creating: 17 }],
    ["the compact form, no lineage", "b/r", {}, { batch: "b", rowId: "r", resubmit: 0 }],
    [
      "the previous version's whole data",
      "b/r",
      { batch: "b", rowId: "r", resubmit: 0, creating: 5 },
      { batch: "b", rowId: "r", resubmit: 0, creating: 5 },
    ],
  ])("reads %s", (_, id, stored, expected) => {
    expect(submitJobSchema.parse(jobDataOf(id, stored))).toEqual(expected);
  });

  it("an id that is no job key adds nothing (the schema then refuses the job)", () => {
    expect(jobDataOf("not-a-key", {})).toEqual({});
    expect(submitJobSchema.safeParse(jobDataOf(undefined, {})).success).toBe(false);
  });
});

describe("the stages' retry backoff", () => {
  it("names the ladder in a few bytes; the options keep the attempts", () => {
    expect(stageJobOptions("submit", 8)).toEqual({ attempts: 8, backoff: { type: "e2" } });
    expect(stageJobOptions("poll")).toEqual({ attempts: 10, backoff: { type: "e5" } });
    expect(STAGE_BACKOFF_TYPE.archive).toBe("e5");
  });

  it.each([
    // BullMQ's exponential with jitter 0.5: base * 2^(n-1), drawn from [50%, 100%).
    ["e2", 1, 0, 1_000],
    ["e2", 1, 0.999_999, 1_999],
    ["e2", 3, 0, 4_000],
    ["e5", 1, 0, 2_500],
    ["e5", 2, 0.5, 7_500],
    ["unknown", 1, 0, 2_500], // not ours: the 5 s ladder
  ])("%s, retry %i, rand %d: %i ms", (type, attempt, rand, expected) => {
    expect(stageRetryDelay(attempt, type, () => rand)).toBe(expected);
  });
});
