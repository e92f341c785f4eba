/**
 * The KIE metrics decorator counts every call by endpoint and outcome, and each generation once;
 * answers and errors reach the stages as the client gave them.
 */
import { describe, expect, it } from "vitest";
import { KieError } from "../../src/kie/errors.js";
import type { KieApi, TaskRecord } from "../../src/kie/types.js";
import { BoundedSet } from "../../src/metrics/bounded-set.js";
import { instrumentKie, kieOutcome } from "../../src/metrics/kie.js";
import { metricsFor, seriesValue } from "../helpers/prometheus.js";

const rateLimited = () =>
  new KieError({
    code: "rate_limited",
    message: "429",
    retryable: true,
    fleetEffect: "rate-limited",
    apiCode: 429,
  });

function fakeKie(overrides: Partial<KieApi> = {}): KieApi {
  return {
    submit: async () => "task-1",
    getTask: async (taskId) => ({ taskId, status: "generating", imageUrls: [] }),
    refreshDownloadUrl: async (url) => `${url}?fresh`,
    getCredits: async () => 100,
    ...overrides,
  };
}

describe("metrics: KIE calls", () => {
  it.each([
    [undefined, "ok", ""],
    [rateLimited(), "rate_limited", "429"],
    [
      new KieError({ code: "unknown_code", message: "?", retryable: false, apiCode: 777 }),
      "unknown_code",
      "other",
    ],
    [new KieError({ code: "network", message: "reset", retryable: true }), "network", ""],
    [new Error("boom"), "error", ""],
  ])("labels an outcome: %s -> code %s, api_code %j", (error, code, apiCode) => {
    expect(kieOutcome(error)).toEqual({ code, apiCode });
  });

  it("an aborted call is 'aborted', not an API failure", () => {
    const controller = new AbortController();
    controller.abort();
    expect(kieOutcome(new Error("AbortError"), controller.signal).code).toBe("aborted");
  });

  it("counts submits by outcome and 429s, and passes answers and errors through untouched", async () => {
    const metrics = metricsFor();
    const error = rateLimited();
    let calls = 0;
    const kie = instrumentKie(
      fakeKie({
        submit: async () => {
          calls++;
          if (calls === 2) throw error;
          return `task-${calls}`;
        },
      }),
      metrics,
    );
    expect(await kie.submit({ prompt: "a" })).toBe("task-1");
    await expect(kie.submit({ prompt: "b" })).rejects.toBe(error);
    expect(await kie.submit({ prompt: "c" })).toBe("task-3");

    expect(await seriesValue(metrics.submits)).toBe(2);
    expect(await seriesValue(metrics.apiRequests, { endpoint: "submit", code: "ok" })).toBe(2);
    expect(
      await seriesValue(metrics.apiRequests, { endpoint: "submit", code: "rate_limited", api_code: "429" }),
    ).toBe(1);
    expect(await seriesValue(metrics.rateLimited, { endpoint: "submit" })).toBe(1);
    expect(await seriesValue(metrics.apiDuration, { endpoint: "submit" }, "_count")).toBe(3);
  });

  it("observes each task's generation time once, from the provider's timestamps", async () => {
    const metrics = metricsFor();
    const done = (taskId: string, seconds: number): TaskRecord => ({
      taskId,
      status: "success",
      imageUrls: ["http://x/1.png"],
      createdAt: 1_000_000,
      completedAt: 1_000_000 + seconds * 1000,
    });
    const answers: TaskRecord[] = [
      { taskId: "t1", status: "generating", imageUrls: [] },
      done("t1", 12),
      done("t1", 12), // a poll job run again after a crash: the same task, not a second generation
      done("t2", 30),
      { taskId: "t3", status: "failed", imageUrls: [], failCode: "500" },
    ];
    const kie = instrumentKie(fakeKie({ getTask: async () => answers.shift()! }), metrics);
    for (let i = 0; i < 5; i++) await kie.getTask("any");
    await expect(
      instrumentKie(
        fakeKie({
          getTask: async () => {
            throw new KieError({ code: "record_not_found", message: "null", retryable: true, apiCode: 422 });
          },
        }),
        metrics,
      ).getTask("t4"),
    ).rejects.toThrow("null");

    expect(await seriesValue(metrics.generationSeconds, {}, "_count")).toBe(2);
    expect(await seriesValue(metrics.generationSeconds, {}, "_sum")).toBe(42);
    expect(await seriesValue(metrics.statusCalls, { result: "success" })).toBe(3);
    expect(await seriesValue(metrics.statusCalls, { result: "generating" })).toBe(1);
    expect(await seriesValue(metrics.statusCalls, { result: "failed" })).toBe(1);
    expect(await seriesValue(metrics.statusCalls, { result: "error" })).toBe(1);
    expect(await seriesValue(metrics.apiRequests, { endpoint: "status", code: "record_not_found" })).toBe(1);
  });

  it("the set of tasks seen stays bounded: the oldest are forgotten", () => {
    const seen = new BoundedSet<string>(3);
    for (const id of ["a", "b", "c", "d"]) expect(seen.add(id)).toBe(true);
    expect(seen.size).toBe(3);
    expect(seen.has("a")).toBe(false);
    expect(seen.add("d")).toBe(false);
  });
});
