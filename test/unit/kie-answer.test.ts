import { describe, expect, it } from "vitest";
import { readAnswer } from "../../src/kie/answer.js";
import { type FleetEffect, KieError, type KieErrorCode } from "../../src/kie/errors.js";
import type { KieOperation } from "../../src/kie/rules.js";
import {
  creditDataSchema,
  downloadUrlDataSchema,
  statusRecordSchema,
  submitDataSchema,
} from "../../src/kie/schemas.js";
import { createScrubber } from "../../src/kie/secrets.js";

const SUBMIT = { operation: "submit", endpoint: "POST /api/v1/qwen/generate" } as const;
const STATUS = { operation: "status", endpoint: "GET /api/v1/qwen/record-info" } as const;

function json(body: unknown, httpStatus = 200) {
  return { httpStatus, body: JSON.stringify(body) };
}

/** The KieError readAnswer throws (fails the test when it returns instead). */
function errorOf(run: () => unknown): KieError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KieError);
    return error as KieError;
  }
  throw new Error("expected a KieError, got an answer");
}

interface Row {
  apiCode: number;
  msg: string;
  code: KieErrorCode;
  retryable: boolean;
  fleetEffect?: FleetEffect;
}

const CODE_TABLE: Row[] = [
  { apiCode: 400, msg: "taskId is required", code: "bad_request", retryable: false },
  { apiCode: 401, msg: "Unauthorized", code: "unauthorized", retryable: true, fleetEffect: "bad-key" },
  {
    apiCode: 402,
    msg: "Credits insufficient",
    code: "insufficient_credits",
    retryable: true,
    fleetEffect: "out-of-credits",
  },
  { apiCode: 404, msg: "Not found", code: "not_found", retryable: false },
  { apiCode: 422, msg: "prompt is required", code: "validation", retryable: false },
  { apiCode: 422, msg: "recordInfo is null", code: "record_not_found", retryable: true },
  {
    apiCode: 429,
    msg: "Too many requests",
    code: "rate_limited",
    retryable: true,
    fleetEffect: "rate-limited",
  },
  { apiCode: 433, msg: "Usage cap exceeded", code: "usage_cap", retryable: true, fleetEffect: "usage-cap" },
  { apiCode: 455, msg: "Maintenance", code: "maintenance", retryable: true, fleetEffect: "maintenance" },
  { apiCode: 500, msg: "Server error", code: "server_error", retryable: true },
  { apiCode: 501, msg: "Generation failed", code: "generation_failed", retryable: false },
  { apiCode: 505, msg: "Feature disabled", code: "feature_disabled", retryable: false },
  { apiCode: 503, msg: "Something new", code: "unknown_code", retryable: true },
  { apiCode: 450, msg: "Something new", code: "unknown_code", retryable: false },
];

describe("readAnswer: the body code table", () => {
  it.each(CODE_TABLE)("code $apiCode ($msg) -> $code", ({ apiCode, msg, code, retryable, fleetEffect }) => {
    const error = errorOf(() =>
      readAnswer(json({ code: apiCode, msg, data: null }), SUBMIT, submitDataSchema),
    );
    expect(error).toMatchObject({
      code,
      retryable,
      fleetEffect,
      apiCode,
      httpStatus: 200,
      maybeCreated: false,
    });
    expect(error.endpoint).toBe(SUBMIT.endpoint);
    expect(error.message).toContain(String(apiCode));
  });

  it.each(CODE_TABLE)("code $apiCode under `message` and a real HTTP status reads the same", (row) => {
    const answer = json({ code: row.apiCode, message: row.msg }, row.apiCode);
    const error = errorOf(() => readAnswer(answer, STATUS, statusRecordSchema));
    // HTTP 429 and 503 have their own rows; the rest follow the body code.
    if (row.apiCode === 429) expect(error.code).toBe("rate_limited");
    else if (row.apiCode === 503) expect(error.code).toBe("http_error");
    else
      expect(error).toMatchObject({ code: row.code, retryable: row.retryable, fleetEffect: row.fleetEffect });
  });

  it("a code given as a numeric string is read as the number", () => {
    const error = errorOf(() =>
      readAnswer(json({ code: "402", msg: "no credits" }), SUBMIT, submitDataSchema),
    );
    expect(error).toMatchObject({ code: "insufficient_credits", apiCode: 402 });
  });

  it("a submit that was answered never reports maybeCreated, even for a server error", () => {
    const error = errorOf(() => readAnswer(json({ code: 500, msg: "boom" }), SUBMIT, submitDataSchema));
    expect(error.maybeCreated).toBe(false);
  });
});

type HttpRow = [
  name: string,
  httpStatus: number,
  body: string,
  operation: KieOperation,
  code: KieErrorCode,
  retryable: boolean,
  maybeCreated: boolean,
  fleetEffect?: FleetEffect,
];

// biome-ignore format: a table reads best one row a line
const HTTP_TABLE: HttpRow[] = [
  ["HTTP 429, empty body", 429, "", "submit", "rate_limited", true, false, "rate-limited"],
  ["HTTP 429, HTML body", 429, "<html>slow down</html>", "submit", "rate_limited", true, false, "rate-limited"],
  ["HTTP 429, a code 200 body", 429, '{"code":200,"data":{"taskId":"x"}}', "submit", "rate_limited", true, false, "rate-limited"],
  ["HTTP 502 on submit", 502, "<html>Bad Gateway</html>", "submit", "http_error", true, true],
  ["HTTP 503 on submit", 503, "Service Unavailable", "submit", "http_error", true, false],
  ["HTTP 504 on submit", 504, "<html>Gateway Timeout</html>", "submit", "http_error", true, true],
  ["HTTP 504 with a JSON body", 504, '{"code":500,"msg":"x"}', "submit", "http_error", true, true],
  ["HTTP 502 on status", 502, "", "status", "http_error", true, false],
  ["HTTP 500 plain text on submit", 500, "Internal Server Error", "submit", "http_error", true, true],
  ["HTTP 500 with a KIE body", 500, '{"code":500,"msg":"oops"}', "submit", "server_error", true, false],
  ["HTTP 501 plain text", 501, "Not Implemented", "credit", "http_error", true, false],
  ["HTTP 401 plain text", 401, "Unauthorized", "submit", "unauthorized", true, false, "bad-key"],
  ["HTTP 455 plain text", 455, "", "status", "maintenance", true, false, "maintenance"],
  ["HTTP 404 plain text (a wrong base URL, not a lost task)", 404, "Cannot GET /x", "status", "http_error", false, false],
  ["HTTP 408", 408, "", "submit", "http_error", true, false],
  ["HTTP 302", 302, "", "credit", "http_error", false, false],
  ["HTTP 200, HTML", 200, "<html>hello</html>", "submit", "bad_response", true, true],
  ["HTTP 200, empty", 200, "", "status", "bad_response", true, false],
  ["HTTP 200, code 200 without a taskId", 200, '{"code":200,"msg":"success","data":{}}', "submit", "bad_response", true, true],
  ["HTTP 200, JSON array", 200, "[1,2]", "credit", "bad_response", true, false],
  ["HTTP 200, a bare record on submit", 200, '{"taskId":"x"}', "submit", "bad_response", true, true],
];

describe("readAnswer: HTTP statuses and unreadable bodies", () => {
  it.each(HTTP_TABLE)(
    "%s -> %s",
    (_name, httpStatus, body, operation, code, retryable, maybeCreated, fleetEffect) => {
      const error = errorOf(() =>
        readAnswer({ httpStatus, body }, { operation, endpoint: "POST /x" }, submitDataSchema),
      );
      expect(error).toMatchObject({ code, retryable, maybeCreated, fleetEffect, httpStatus });
    },
  );

  it("an HTML error page is quoted briefly, on one line", () => {
    const page = `<html>\n<body>${"x".repeat(5000)}</body>\n</html>`;
    const error = errorOf(() => readAnswer({ httpStatus: 502, body: page }, SUBMIT, submitDataSchema));
    expect(error.message).not.toContain("\n");
    expect(error.message.length).toBeLessThan(300);
  });

  it("a server that echoes the key does not get it into the message", () => {
    const key = "sk-live-0123456789abcdef";
    const context = { ...SUBMIT, scrub: createScrubber(key) };
    for (const answer of [
      json({ code: 401, msg: `key ${key} is not valid` }),
      { httpStatus: 502, body: `bad gateway for Bearer ${key}` },
      { httpStatus: 200, body: `not json ${key}` },
    ]) {
      const error = errorOf(() => readAnswer(answer, context, submitDataSchema));
      expect(JSON.stringify(error)).not.toContain(key);
      expect(error.message).not.toContain(key);
      expect(error.message).toContain("[redacted]");
    }
  });
});

describe("readAnswer: data of successful answers", () => {
  it("a submit gives the task id (a numeric one as a string)", () => {
    expect(
      readAnswer(json({ code: 200, msg: "success", data: { taskId: "abc" } }), SUBMIT, submitDataSchema),
    ).toEqual({
      taskId: "abc",
    });
    expect(readAnswer(json({ code: 200, data: { taskId: 42 } }), SUBMIT, submitDataSchema).taskId).toBe("42");
  });

  it("credits and download URLs come from data", () => {
    const credit = { operation: "credit", endpoint: "GET /api/v1/chat/credit" } as const;
    expect(readAnswer(json({ code: 200, msg: "success", data: 1234.5 }), credit, creditDataSchema)).toBe(
      1234.5,
    );
    expect(readAnswer(json({ code: 200, data: "99" }), credit, creditDataSchema)).toBe(99);
    const download = { operation: "download-url", endpoint: "POST /api/v1/common/download-url" } as const;
    expect(readAnswer(json({ code: 200, data: "https://d/x.png" }), download, downloadUrlDataSchema)).toBe(
      "https://d/x.png",
    );
    expect(errorOf(() => readAnswer(json({ code: 200, data: null }), credit, creditDataSchema)).code).toBe(
      "bad_response",
    );
  });
});
