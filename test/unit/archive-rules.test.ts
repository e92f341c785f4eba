import { describe, expect, it } from "vitest";
import { isHostAllowed, parseAllowHost } from "../../src/archive/allow-hosts.js";
import { isRetryableArchiveError } from "../../src/archive/copy.js";
import { statusError } from "../../src/archive/download.js";
import { DownloadError } from "../../src/archive/download-error.js";
import { sniffImageType } from "../../src/archive/image-type.js";
import { assertValidKey } from "../../src/archive/keys.js";
import { assertValidMetadata } from "../../src/archive/metadata.js";
import {
  ArchiveStoreError,
  classifyStoreError,
  isRetryableStoreError,
} from "../../src/archive/store-error.js";

describe("allow-list entries", () => {
  it.each<[string[], string, number, boolean]>([
    [["127.0.0.1"], "127.0.0.1", 8080, true],
    [["127.0.0.1:8080"], "127.0.0.1", 8080, true],
    [["127.0.0.1:8080"], "127.0.0.1", 8081, false],
    [["localhost:8080"], "localhost", 8080, true],
    [["LocalHost"], "localhost", 1, true],
    [["localhost"], "127.0.0.1", 80, false],
    [["cdn.example.com:443"], "cdn.example.com", 443, true],
    [["[::1]:9000"], "[::1]", 9000, true],
    [["[::1]:9000"], "[::1]", 9001, false],
    [["::1"], "[::1]", 9001, true],
    [["0:0::1"], "[::1]", 1, true],
    [[], "127.0.0.1", 80, false],
  ])("%j allows %s on port %i: %s", (allowHosts, hostname, port, expected) => {
    expect(isHostAllowed(allowHosts, hostname, port)).toBe(expected);
  });

  it.each(["host:0", "host:70000", "host:", ":80", "[::1", "[::1]x", "host:abc"])(
    "a malformed entry %j throws",
    (entry) => {
      expect(() => parseAllowHost(entry)).toThrow(/Invalid allow-host entry/);
    },
  );
});

describe("archive keys", () => {
  it.each(["batch/1.png", "a.png", "batch-1/row_7/x.json", ".hidden.png", "a/..b/c"])(
    "%j is accepted",
    (key) => {
      expect(() => assertValidKey(key)).not.toThrow();
    },
  );

  it.each([
    "",
    "/etc/passwd",
    "../x.png",
    "a/../../x",
    "a/./b",
    "a//b",
    "a\\..\\b",
    "a/",
    "x\0y",
    "b/.x.png.meta.json",
    "b/.x.1.tmp",
  ])("%j is refused as invalid_key", (key) => {
    expect(() => assertValidKey(key)).toThrow(
      expect.objectContaining({ code: "invalid_key", retryable: false }),
    );
  });
});

describe("object metadata", () => {
  it("ASCII metadata within 2 KB passes", () => {
    expect(() =>
      assertValidMetadata({
        "task-id": "abc123",
        "prompt-sha256": "f".repeat(64),
        seed: "42",
        "row-id": "r-1",
      }),
    ).not.toThrow();
  });

  it.each<[string, Record<string, string>]>([
    ["Chinese text", { prompt: "一只猫" }],
    ["an accented letter", { title: "café" }],
    ["a control character", { x: "a\nb" }],
    ["an empty value", { seed: "" }],
    ["a leading blank", { x: " a" }],
    ["an upper-case key", { "Task-Id": "a" }],
    ["a key with a space", { "task id": "a" }],
    ["over 2 KB in all", { a: "x".repeat(1500), b: "y".repeat(600) }],
  ])("%s is refused as invalid_metadata", (_why, metadata) => {
    expect(() => assertValidMetadata(metadata)).toThrow(
      expect.objectContaining({ code: "invalid_metadata" }),
    );
  });
});

describe("store error classification", () => {
  const s3 = (name: string, status: number, extra: object = {}) =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, ...extra });
  const sys = (code: string) => Object.assign(new Error(code), { code, syscall: "connect" });

  it.each<[string, unknown, string, boolean]>([
    ["500 InternalError", s3("InternalError", 500), "unavailable", true],
    ["503 SlowDown", s3("SlowDown", 503), "unavailable", true],
    ["502 with an unknown name", s3("BadGateway", 502), "unavailable", true],
    ["400 ThrottlingException", s3("ThrottlingException", 400), "unavailable", true],
    ["TimeoutError", Object.assign(new Error("t"), { name: "TimeoutError" }), "unavailable", true],
    ["ECONNREFUSED", sys("ECONNREFUSED"), "unavailable", true],
    ["ECONNRESET", sys("ECONNRESET"), "unavailable", true],
    ["ENOSPC", sys("ENOSPC"), "no_space", true],
    ["EDQUOT", sys("EDQUOT"), "no_space", true],
    // What Node really reports for EDQUOT (libuv has no name for it): sync and async forms.
    [
      "EDQUOT as Node reports it (code UNKNOWN, errno -122)",
      Object.assign(sys("UNKNOWN"), { errno: -122, syscall: "write" }),
      "no_space",
      true,
    ],
    [
      "EDQUOT from an async call",
      Object.assign(sys("Unknown system error -122"), { errno: -122, syscall: "write" }),
      "no_space",
      true,
    ],
    ["another unnamed errno", Object.assign(sys("UNKNOWN"), { errno: -121 }), "failed", false],
    ["a wrapped ENOSPC (a write's own error)", new Error("x", { cause: sys("ENOSPC") }), "no_space", true],
    ["507 XMinioStorageFull", s3("XMinioStorageFull", 507), "no_space", true],
    ["507 with an unknown name", s3("InsufficientStorage", 507), "no_space", true],
    [
      "MinIO's 500 saying the drive is full",
      Object.assign(s3("InternalError", 500), {
        message: "We encountered an internal error, please try again.: cause(no space left on device)",
      }),
      "no_space",
      true,
    ],
    ["EIO", sys("EIO"), "unavailable", true],
    ["a wrapped ECONNREFUSED", new Error("x", { cause: sys("ECONNREFUSED") }), "unavailable", true],
    ["$retryable", Object.assign(new Error("x"), { $retryable: {} }), "unavailable", true],
    ["403 AccessDenied", s3("AccessDenied", 403), "access_denied", false],
    ["403 with an unknown name", s3("Forbidden", 403), "access_denied", false],
    ["InvalidAccessKeyId", s3("InvalidAccessKeyId", 403), "access_denied", false],
    ["EACCES", sys("EACCES"), "access_denied", false],
    ["404 NoSuchBucket", s3("NoSuchBucket", 404), "no_such_bucket", false],
    ["400 InvalidArgument", s3("InvalidArgument", 400), "failed", false],
    // Bytes damaged or cut short on the way, a multipart upload the server lost: put again.
    ["400 BadDigest", s3("BadDigest", 400), "unavailable", true],
    // An S3-compatible refusing the SDK's request checksums: the deployment's (a pause), not the row's.
    ["400 XAmzContentSHA256Mismatch", s3("XAmzContentSHA256Mismatch", 400), "checksum_refused", true],
    [
      "400 InvalidArgument naming the SDK's checksum header (B2)",
      Object.assign(s3("InvalidArgument", 400), {
        message: "Unsupported header 'x-amz-sdk-checksum-algorithm' received for this API call.",
      }),
      "checksum_refused",
      true,
    ],
    [
      "400 InvalidRequest refusing a multipart upload's CRC32",
      Object.assign(s3("InvalidRequest", 400), {
        message:
          "The upload was created using a crc32 checksum. The complete request must include the checksum for each part.",
      }),
      "checksum_refused",
      true,
    ],
    [
      "400 InvalidArgument refusing aws-chunked (COS, OSS)",
      Object.assign(s3("InvalidArgument", 400), {
        message: "aws-chunked encoding is not supported with the specified x-amz-content-sha256 value",
      }),
      "checksum_refused",
      true,
    ],
    ["400 IncompleteBody", s3("IncompleteBody", 400), "unavailable", true],
    ["404 NoSuchUpload", s3("NoSuchUpload", 404), "unavailable", true],
    ["400 InvalidPart", s3("InvalidPart", 400), "unavailable", true],
    ["a plain Error", new Error("boom"), "failed", false],
    ["a string", "boom", "failed", false],
  ])("%s is %s (retryable: %s)", (_what, error, code, retryable) => {
    expect(classifyStoreError(error)).toBe(code);
    expect(isRetryableStoreError(error)).toBe(retryable);
  });
});

describe("download answers", () => {
  const url = new URL("https://files.example.com/a.png");
  it.each<[number, string, boolean]>([
    [403, "expired", false],
    [404, "expired", false],
    [410, "expired", false],
    [500, "transient", true],
    [502, "transient", true],
    [503, "transient", true],
    [429, "transient", true],
    [408, "transient", true],
    [400, "http_error", false],
    [401, "http_error", false],
    [451, "http_error", false],
    [304, "http_error", false],
  ])("HTTP %i is %s (retryable: %s)", (status, code, retryable) => {
    expect(statusError(status, url)).toMatchObject({
      name: "DownloadError",
      code,
      retryable,
      httpStatus: status,
    });
  });

  it.each<[string, number[], string | undefined]>([
    ["PNG", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "png"],
    ["JPEG", [0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46], "jpg"],
    ["HTML", [...Buffer.from("<html><b")], undefined],
    ["a PNG signature cut short", [0x89, 0x50, 0x4e, 0x47], undefined],
    ["a PNG signature with one wrong byte", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0b], undefined],
    ["GIF", [...Buffer.from("GIF89a..")], undefined],
  ])("magic bytes of %s", (_what, bytes, ext) => {
    expect(sniffImageType(Uint8Array.from(bytes))?.ext).toBe(ext);
  });
});

describe("isRetryableArchiveError", () => {
  const download = (code: ConstructorParameters<typeof DownloadError>[0]["code"]) =>
    new DownloadError({ code, message: code });
  it.each<[string, unknown, boolean]>([
    ["a transient download", download("transient"), true],
    ["an expired URL (refresh first)", download("expired"), false],
    ["a refused host", download("host_refused"), false],
    ["not an image", download("not_image"), false],
    ["an unavailable store", new ArchiveStoreError({ code: "unavailable", message: "x" }), true],
    ["a missing bucket", new ArchiveStoreError({ code: "no_such_bucket", message: "x" }), false],
    ["a transient download after JSON round trip", JSON.parse(JSON.stringify(download("transient"))), true],
    ["a raw ECONNRESET", Object.assign(new Error("reset"), { code: "ECONNRESET" }), true],
  ])("%s: %s", (_what, error, expected) => {
    expect(isRetryableArchiveError(error)).toBe(expected);
  });
});
