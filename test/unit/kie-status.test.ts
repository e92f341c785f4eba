import { describe, expect, it } from "vitest";
import { readAnswer } from "../../src/kie/answer.js";
import { KieError } from "../../src/kie/errors.js";
import { normalizeRecord } from "../../src/kie/normalize.js";
import { statusRecordSchema } from "../../src/kie/schemas.js";

const STATUS = { operation: "status", endpoint: "GET /api/v1/qwen/record-info" } as const;

/** A status answer read and normalised the way the client does it. */
function status(body: unknown, httpStatus = 200) {
  const record = readAnswer({ httpStatus, body: JSON.stringify(body) }, STATUS, statusRecordSchema);
  return normalizeRecord(record, "t-requested");
}

function errorOf(run: () => unknown): KieError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KieError);
    return error as KieError;
  }
  throw new Error("expected a KieError, got an answer");
}

describe("status answers: three shapes, two flavours", () => {
  const qwenRecord = {
    taskId: "qwen_task_xyz789",
    successFlag: 1,
    imageUrl: "https://cdn.kie.ai/qwen/image.png",
    createTime: "2025-12-07T10:00:00Z",
    completeTime: "2025-12-07T10:08:00Z",
  };
  const expected = {
    taskId: "qwen_task_xyz789",
    status: "success",
    imageUrls: ["https://cdn.kie.ai/qwen/image.png"],
    createdAt: Date.parse("2025-12-07T10:00:00Z"),
    completedAt: Date.parse("2025-12-07T10:08:00Z"),
  };

  it.each([
    ["wrapped with msg", { code: 200, msg: "success", data: qwenRecord }],
    ["wrapped with message", { code: 200, message: "success", data: qwenRecord }],
    ["bare (the seed's example)", qwenRecord],
    [
      "wrapped, with extra fields and nulls",
      { code: 200, msg: null, data: { ...qwenRecord, errorMessage: null, extra: 1 } },
    ],
  ])("%s", (_name, body) => {
    expect(status(body)).toEqual(expected);
  });

  it("a bare record that matches no flavour is a bad response", () => {
    expect(errorOf(() => status({ taskId: "x", successFlag: 7 })).code).toBe("bad_response");
    expect(errorOf(() => status({ taskId: "x", state: "exploded" })).code).toBe("bad_response");
  });

  it.each([
    [0, "generating", undefined],
    [1, "success", undefined],
    [2, "failed", "2"],
    [3, "failed", "3"],
    ["2", "failed", "2"],
  ])("successFlag %s -> %s (failCode %s)", (flag, expectedStatus, failCode) => {
    const record = status({
      code: 200,
      data: { taskId: "t1", successFlag: flag, imageUrl: "https://x/1.png", errorMessage: "nsfw" },
    });
    expect(record.status).toBe(expectedStatus);
    expect(record.failCode).toBe(failCode);
    expect(record.imageUrls).toEqual(expectedStatus === "success" ? ["https://x/1.png"] : []);
    expect(record.failMessage).toBe(expectedStatus === "failed" ? "nsfw" : undefined);
  });

  const jobsBase = {
    taskId: "j1",
    model: "qwen/text-to-image",
    createTime: 1_765_101_600_000,
    updateTime: 1_765_101_660_000,
    completeTime: 1_765_101_660_000,
    costTime: 60_000,
  };

  it.each([
    ["a JSON string", JSON.stringify({ resultUrls: ["https://r/1.png", "https://r/2.png"] })],
    ["an object", { resultUrls: ["https://r/1.png", "https://r/2.png"] }],
  ])("jobs success with resultJson as %s", (_name, resultJson) => {
    const record = status({
      code: 200,
      msg: "success",
      data: {
        ...jobsBase,
        state: "success",
        resultJson,
        failCode: null,
        failMsg: null,
        creditsConsumed: 3.5,
      },
    });
    expect(record).toEqual({
      taskId: "j1",
      status: "success",
      imageUrls: ["https://r/1.png", "https://r/2.png"],
      createdAt: 1_765_101_600_000,
      completedAt: 1_765_101_660_000,
      creditsConsumed: 3.5,
    });
  });

  it.each([
    ["waiting", "generating"],
    ["queuing", "generating"],
    ["generating", "generating"],
    ["GENERATING", "generating"],
  ])("jobs state %s -> %s", (state, expectedStatus) => {
    expect(status({ code: 200, data: { ...jobsBase, state, resultJson: "" } }).status).toBe(expectedStatus);
  });

  it.each([
    ["a string", "E_NSFW", "E_NSFW"],
    ["a number", 501, "501"],
    ["null", null, undefined],
  ])("jobs failCode as %s", (_name, failCode, expected) => {
    const record = status({
      code: 200,
      data: { ...jobsBase, state: "fail", resultJson: null, failCode, failMsg: "no" },
    });
    expect(record).toMatchObject({ status: "failed", imageUrls: [], failMessage: "no" });
    expect(record.failCode).toBe(expected);
  });

  it("a success without any result URL is a bad response, not an empty archive", () => {
    for (const resultJson of ["not json", "", { resultUrls: [] }, null]) {
      const error = errorOf(() => status({ code: 200, data: { ...jobsBase, state: "success", resultJson } }));
      expect(error).toMatchObject({ code: "bad_response", retryable: true });
    }
  });

  it("a jobs record still waiting, with no resultJson field at all, reads as generating", () => {
    expect(
      status({ code: 200, data: { taskId: "j2", state: "waiting", createTime: 1_765_101_600_000 } }),
    ).toEqual({
      taskId: "j2",
      status: "generating",
      imageUrls: [],
      createdAt: 1_765_101_600_000,
    });
  });

  it("a record without a taskId takes the requested one", () => {
    expect(status({ successFlag: 0 }).taskId).toBe("t-requested");
  });

  it("422 recordInfo is null, wrapped with message, is record_not_found", () => {
    const error = errorOf(() => status({ code: 422, message: "recordInfo is null", data: null }));
    expect(error).toMatchObject({ code: "record_not_found", retryable: true, apiCode: 422 });
  });
});
