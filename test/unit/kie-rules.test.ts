import { errors } from "undici";
import { describe, expect, it } from "vitest";
import { toEpochMs } from "../../src/kie/normalize.js";
import {
  isRecordNotFoundMessage,
  isRetryableHttpStatus,
  type KieOperation,
  mayHaveCreatedAfterTransportError,
  submitMayHaveCreatedAfterHttpStatus,
} from "../../src/kie/rules.js";
import { createScrubber } from "../../src/kie/secrets.js";
import { fromTransportError } from "../../src/kie/transport-error.js";

function nodeError(code: string, syscall?: string): Error {
  return Object.assign(new Error(`${syscall ?? "read"} ${code}`), { code, syscall });
}

describe("retry rules", () => {
  it.each([
    [502, true],
    [503, false],
    [504, true],
    [500, true],
    [520, true],
    [429, false],
    [455, false],
    [400, false],
  ])("a submit answered HTTP %i may have created a task: %s", (httpStatus, expected) => {
    expect(submitMayHaveCreatedAfterHttpStatus(httpStatus)).toBe(expected);
  });

  it.each([
    [500, true],
    [502, true],
    [408, true],
    [429, true],
    [404, false],
    [400, false],
    [302, false],
  ])("HTTP %i without a KIE body is retryable: %s", (httpStatus, expected) => {
    expect(isRetryableHttpStatus(httpStatus)).toBe(expected);
  });

  it.each([
    ["recordInfo is null", true],
    ["RecordInfo is null.", true],
    ["record info is null", true],
    ["prompt is required", false],
    [undefined, false],
  ])("%j means an unknown (or just created) task: %s", (message, expected) => {
    expect(isRecordNotFoundMessage(message)).toBe(expected);
  });
});

interface TransportRow {
  name: string;
  error: Error;
  code: "network" | "timeout";
  retryable: boolean;
  submitMaybeCreated: boolean;
}

const TRANSPORT_TABLE: TransportRow[] = [
  {
    name: "connect timeout",
    error: new errors.ConnectTimeoutError(),
    code: "timeout",
    retryable: true,
    submitMaybeCreated: false,
  },
  {
    name: "connection refused",
    error: nodeError("ECONNREFUSED", "connect"),
    code: "network",
    retryable: true,
    submitMaybeCreated: false,
  },
  {
    name: "DNS failure",
    error: nodeError("ENOTFOUND", "getaddrinfo"),
    code: "network",
    retryable: true,
    submitMaybeCreated: false,
  },
  {
    name: "reset during connect",
    error: nodeError("ECONNRESET", "connect"),
    code: "network",
    retryable: true,
    submitMaybeCreated: false,
  },
  {
    name: "closed client",
    error: new errors.ClientClosedError(),
    code: "network",
    retryable: true,
    submitMaybeCreated: false,
  },
  {
    name: "headers timeout",
    error: new errors.HeadersTimeoutError(),
    code: "timeout",
    retryable: true,
    submitMaybeCreated: true,
  },
  {
    name: "body timeout",
    error: new errors.BodyTimeoutError(),
    code: "timeout",
    retryable: true,
    submitMaybeCreated: true,
  },
  {
    name: "socket closed by the other side",
    error: new errors.SocketError("other side closed"),
    code: "network",
    retryable: true,
    submitMaybeCreated: true,
  },
  {
    name: "connection reset",
    error: nodeError("ECONNRESET"),
    code: "network",
    retryable: true,
    submitMaybeCreated: true,
  },
  {
    name: "broken pipe",
    error: nodeError("EPIPE", "write"),
    code: "network",
    retryable: true,
    submitMaybeCreated: true,
  },
  {
    name: "destroyed client",
    error: new errors.ClientDestroyedError(),
    code: "network",
    retryable: true,
    submitMaybeCreated: true,
  },
  {
    name: "invalid argument (a local bug)",
    error: new errors.InvalidArgumentError("bad header"),
    code: "network",
    retryable: false,
    submitMaybeCreated: false,
  },
  {
    name: "an error without a code",
    error: new Error("weird"),
    code: "network",
    retryable: true,
    submitMaybeCreated: true,
  },
];

describe("fromTransportError", () => {
  it.each(TRANSPORT_TABLE)("$name -> $code", (row) => {
    const submit = fromTransportError(row.error, {
      operation: "submit",
      endpoint: "POST /api/v1/qwen/generate",
    });
    expect(submit).toMatchObject({
      name: "KieError",
      code: row.code,
      retryable: row.retryable,
      maybeCreated: row.submitMaybeCreated,
      endpoint: "POST /api/v1/qwen/generate",
    });
    for (const operation of ["status", "credit", "download-url"] satisfies KieOperation[]) {
      expect(fromTransportError(row.error, { operation, endpoint: "GET /x" }).maybeCreated).toBe(false);
    }
  });

  it.each([
    ["submit", nodeError("ECONNRESET"), true],
    ["status", nodeError("ECONNRESET"), false],
    ["submit", nodeError("ECONNREFUSED", "connect"), false],
  ] as const)("maybeCreated(%s, %s) is %s", (operation, error, expected) => {
    const { code, syscall } = error as Error & { code: string; syscall: string };
    expect(mayHaveCreatedAfterTransportError(operation, code, syscall)).toBe(expected);
  });

  it("keeps only a plain, scrubbed summary of the cause", () => {
    const key = "sk-test-secret-123456";
    const raw = Object.assign(new errors.SocketError(`closed while sending Bearer ${key}`), {
      headers: { authorization: `Bearer ${key}` },
    });
    const error = fromTransportError(raw, {
      operation: "submit",
      endpoint: "POST /x",
      scrub: createScrubber(key),
    });
    expect(error.cause).toEqual({
      name: "SocketError",
      code: "UND_ERR_SOCKET",
      message: "closed while sending Bearer [redacted]",
    });
    expect(error.message).not.toContain(key);
    expect(JSON.stringify(error)).not.toContain(key);
  });
});

describe("toEpochMs", () => {
  it.each([
    ["ISO with zone", "2025-12-07T10:00:00Z", Date.UTC(2025, 11, 7, 10)],
    ["ISO with offset", "2025-12-07T12:00:00+02:00", Date.UTC(2025, 11, 7, 10)],
    ["zoneless date-time, read as UTC", "2025-12-07 10:00:00", Date.UTC(2025, 11, 7, 10)],
    ["unix ms", 1_765_101_600_000, 1_765_101_600_000],
    ["unix ms as a string", "1765101600000", 1_765_101_600_000],
    ["unix seconds", 1_765_101_600, 1_765_101_600_000],
    ["garbage", "soon", undefined],
    ["empty", "", undefined],
    ["zero", 0, undefined],
    ["null", null, undefined],
  ])("%s", (_name, value, expected) => {
    expect(toEpochMs(value)).toBe(expected);
  });
});
