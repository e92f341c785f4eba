import { createHash } from "node:crypto";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeStore } from "../../src/archive/probe.js";
import { createS3Store } from "../../src/archive/s3-store.js";
import { putJson } from "../../src/archive/sidecar.js";
import { isRetryableStoreError } from "../../src/archive/store-error.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { digestOf, pngBytes, pngStream } from "../helpers/image-server.js";
import { startRefusingS3 } from "../helpers/refusing-s3.js";
import { answerAfterBody, startS3Proxy } from "../helpers/s3-proxy.js";
import { type RunningS3rver, startS3rver } from "../helpers/s3rver.js";

let s3: RunningS3rver;
let client: S3Client;
let store: ArchiveStore;

beforeAll(async () => {
  s3 = await startS3rver();
  client = new S3Client(s3.clientOptions);
  store = createS3Store({ ...s3.clientOptions, bucket: s3.bucket, prefix: "archive/" });
});
afterAll(async () => {
  await store?.close();
  client?.destroy();
  await s3?.close();
});

async function getObject(key: string) {
  const answer = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return { answer, digest: await digestOf(answer.Body as Readable) };
}

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<Error & { code?: string; retryable?: boolean }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("S3 store against s3rver", () => {
  it("stores a small image in one part with exact bytes, content type and metadata", async () => {
    const png = await pngBytes(1_000_000, 11);
    const metadata = {
      "task-id": "task-123",
      "prompt-sha256": "a".repeat(64),
      seed: "42",
      batch: "b1",
      "row-id": "r-1",
    };
    const stored: number[] = [];
    await store.put("b1/r-1.png", Readable.from([png]), {
      contentType: "image/png",
      metadata,
      onStored: (bytes) => stored.push(bytes),
    });
    expect(stored).toEqual([1_000_000]);

    expect(store.locationOf("b1/r-1.png")).toBe(`s3://${s3.bucket}/archive/b1/r-1.png`);
    const { answer, digest } = await getObject("archive/b1/r-1.png");
    expect(digest.sha256).toBe(createHash("sha256").update(png).digest("hex"));
    expect(answer.ContentType).toBe("image/png");
    expect(answer.Metadata).toEqual(metadata);
    expect(await store.head("b1/r-1.png")).toEqual({ size: 1_000_000, metadata, etag: expect.any(String) });
  });

  it("stores a 20 MB image in 8 MiB parts with exact bytes", async () => {
    const size = 20 * 1024 * 1024;
    const stored: number[] = [];
    const counted = new S3Client(s3.clientOptions);
    const commands: string[] = [];
    counted.middlewareStack.add(
      (next, context) => (args) => {
        commands.push(context.commandName as string);
        return next(args);
      },
      { step: "initialize" },
    );
    const multipart = createS3Store({
      bucket: s3.bucket,
      prefix: "archive/",
      region: "us-east-1",
      client: counted,
    });
    try {
      await multipart.put("b1/big.png", pngStream(size, 5), {
        contentType: "image/png",
        metadata: { "task-id": "t-big" },
        onStored: (bytes) => stored.push(bytes),
      });
    } finally {
      counted.destroy();
    }
    expect(commands.sort()).toEqual([
      "CompleteMultipartUploadCommand",
      "CreateMultipartUploadCommand",
      "UploadPartCommand",
      "UploadPartCommand",
      "UploadPartCommand",
    ]);
    expect(stored).toEqual([size]);
    const { answer, digest } = await getObject("archive/b1/big.png");
    expect(digest).toEqual(await digestOf(pngStream(size, 5)));
    expect(answer.ContentType).toBe("image/png");
    expect(await store.head("b1/big.png")).toEqual({
      size,
      metadata: { "task-id": "t-big" },
      etag: expect.any(String),
    });
  });

  it("head of a missing key is undefined", async () => {
    expect(await store.head("b1/missing.png")).toBeUndefined();
  });

  it.each([
    ["Chinese text", { prompt: "一只猫" }],
    ["over 2 KB", { a: "x".repeat(2000), b: "y".repeat(100) }],
  ])("refuses metadata with %s before sending anything (s3rver would accept it)", async (_what, metadata) => {
    const error = await failure(
      store.put("b1/bad-meta.png", Readable.from([await pngBytes(1000)]), {
        contentType: "image/png",
        metadata,
      }),
    );
    expect(error).toMatchObject({ name: "ArchiveStoreError", code: "invalid_metadata", retryable: false });
    expect(error.message).toMatch(/ASCII|2048/);
    expect(await store.head("b1/bad-meta.png")).toBeUndefined();
  });

  it("refuses keys that escape the prefix, and destroys the body", async () => {
    const body = Readable.from([Buffer.from("x")]);
    const error = await failure(store.put("../x.png", body, { contentType: "image/png" }));
    expect(error).toMatchObject({ code: "invalid_key", retryable: false });
    expect(body.destroyed).toBe(true);
  });

  it("a bucket that does not exist is a non-retryable error", async () => {
    const missing = createS3Store({ ...s3.clientOptions, bucket: "no-such-bucket" });
    try {
      const error = await failure(
        missing.put("x.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" }),
      );
      expect(error).toMatchObject({ name: "ArchiveStoreError", code: "no_such_bucket", retryable: false });
      expect(error.message).toContain("s3://no-such-bucket/x.png");
      expect(isRetryableStoreError(error)).toBe(false);
    } finally {
      await missing.close();
    }
  });

  it("an unreachable endpoint is a retryable error", async () => {
    const gone = await startS3rver();
    await gone.close();
    const unreachable = createS3Store({ ...gone.clientOptions, bucket: gone.bucket });
    try {
      const error = await failure(
        unreachable.put("x.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" }),
      );
      expect(error).toMatchObject({ name: "ArchiveStoreError", code: "unavailable", retryable: true });
      expect(isRetryableStoreError(error)).toBe(true);
      await expect(unreachable.head("x.png")).rejects.toMatchObject({ code: "unavailable" });
    } finally {
      await unreachable.close();
    }
  });

  it("an endpoint that takes requests and never answers fails them as retryable once their socket idles (not held for good)", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    const hanging = createS3Store({
      ...s3.clientOptions,
      endpoint: `http://127.0.0.1:${port}`,
      bucket: s3.bucket,
      idleTimeoutMs: 300,
    });
    try {
      const started = Date.now();
      await expect(hanging.head("x.png")).rejects.toMatchObject({ code: "unavailable", retryable: true });
      await expect(
        hanging.put("x.json", Readable.from([Buffer.from("{}")]), { contentType: "application/json" }),
      ).rejects.toMatchObject({ code: "unavailable", retryable: true });
      // The SDK's own retries each wait out the idle time: seconds, not forever.
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await hanging.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("a body that fails mid-upload rejects with the body's own error and stores nothing", async () => {
    const body = new PassThrough();
    const cause = new Error("download cut");
    const writing = store.put("b1/cut.png", body, { contentType: "image/png" });
    const source = pngStream(12 * 1024 * 1024);
    let sent = 0;
    for await (const chunk of source) {
      body.write(chunk);
      sent += (chunk as Buffer).length;
      if (sent > 10 * 1024 * 1024) break;
    }
    body.destroy(cause);
    await expect(writing).rejects.toBe(cause);
    expect(await store.head("b1/cut.png")).toBeUndefined();
  });

  it("an abort rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const body = new PassThrough();
    body.write(await pngBytes(1000));
    const writing = store.put("b1/aborted.png", body, {
      contentType: "image/png",
      signal: controller.signal,
    });
    // Abort mid-upload: once the store has taken the bytes written so far.
    await expect.poll(() => body.readableLength).toBe(0);
    controller.abort(new Error("shutdown"));
    await expect(writing).rejects.toThrow("shutdown");
    expect(body.destroyed).toBe(true);
    expect(await store.head("b1/aborted.png")).toBeUndefined();
  });

  it("putJson stores pretty UTF-8 JSON whose Chinese text round-trips", async () => {
    const row = { id: "r-1", prompt: "一只在月光下的猫，水墨画风格", metadata: { 风格: "水墨" } };
    await putJson(store, "b1/r-1.json", row, { metadata: { "task-id": "t-1" } });
    const answer = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "archive/b1/r-1.json" }));
    const text = await answer.Body!.transformToString("utf8");
    expect(JSON.parse(text)).toEqual(row);
    expect(text).toContain('  "prompt": "一只在月光下的猫，水墨画风格"');
    expect(answer.ContentType).toBe("application/json; charset=utf-8");
    expect(answer.Metadata).toEqual({ "task-id": "t-1" });
    await expect(
      putJson(store, "b1/r-2.json", row, { metadata: { prompt: row.prompt } }),
    ).rejects.toMatchObject({
      code: "invalid_metadata",
    });
  });

  it("close() leaves an injected client usable", async () => {
    const shared = createS3Store({ ...s3.clientOptions, bucket: s3.bucket, client });
    await shared.close();
    expect(await getObject("archive/b1/r-1.png")).toBeDefined();
  });
});

describe("a store refusing the AWS SDK's request checksums", () => {
  it("behind S3_ENDPOINT (an S3-compatible): the deployment's setting, named; on AWS itself: a put to try again", async () => {
    const proxy = await startRefusingS3(s3.endpoint);
    proxy.refuse("XAmzContentSHA256Mismatch", ["PUT", "POST"]);
    const compatible = createS3Store({ ...s3.clientOptions, endpoint: proxy.endpoint, bucket: s3.bucket });
    // A client of its own and no endpoint: how the store is made for AWS's own S3.
    const awsClient = new S3Client({ ...s3.clientOptions, endpoint: proxy.endpoint });
    const { endpoint: _endpoint, ...withoutEndpoint } = s3.clientOptions;
    const aws = createS3Store({ ...withoutEndpoint, client: awsClient, bucket: s3.bucket });
    try {
      const refused = await failure(compatible.put("k.png", pngStream(1_000), { contentType: "image/png" }));
      expect(refused).toMatchObject({ code: "checksum_refused", retryable: true });
      expect(refused.message).toContain("AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED");
      const damaged = await failure(aws.put("k.png", pngStream(1_000), { contentType: "image/png" }));
      expect(damaged).toMatchObject({ code: "unavailable", retryable: true });
      expect(damaged.message).not.toContain("AWS_REQUEST_CHECKSUM_CALCULATION");
    } finally {
      await compatible.close();
      await aws.close();
      awsClient.destroy();
      await proxy.close();
    }
  });
});

describe("the store probe of an S3 store", () => {
  it("writes its object through a multipart upload too when asked: a store taking small puts but refusing a part's checksum stays paused, its upload aborted", async () => {
    // B2, R2 and older MinIO builds have refused a multipart upload's CRC32 while taking a small
    // PutObject: a probe of the small put alone passed, and the next large image paused again.
    const refusal = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>The upload's x-amz-checksum-crc32 is not supported for multipart uploads (test)</Message><RequestId>test</RequestId></Error>`;
    const noMultipart = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code><Message>multipart uploads are not implemented (test)</Message><RequestId>test</RequestId></Error>`;
    let refuse: "part" | "all" | false = false;
    const seen: string[] = [];
    const proxy = await startS3Proxy(s3.endpoint, (req, res) => {
      const url = req.url ?? "";
      if (/[?&](uploads|uploadId)\b/.test(url))
        seen.push(
          `${req.method} ${url.includes("partNumber") ? "part" : url.includes("uploads") ? "create" : "upload"}`,
        );
      if (refuse === "part" && req.method === "PUT" && /[?&]partNumber=/.test(url)) {
        answerAfterBody(req, res, 400, refusal);
        return true;
      }
      if (refuse === "all" && /[?&](uploads|uploadId)\b/.test(url)) {
        answerAfterBody(req, res, 501, noMultipart);
        return true;
      }
      return false;
    });
    const compatible = createS3Store({ ...s3.clientOptions, endpoint: proxy.endpoint, bucket: s3.bucket });
    try {
      // Multipart taken (s3rver): the probe passes and leaves nothing behind.
      await probeStore(compatible, { multipart: true });
      expect(seen).toEqual(["POST create", "PUT part", "POST upload"]);
      expect(await compatible.head(".kie-batch-probe.json")).toBeUndefined();

      refuse = "part";
      seen.length = 0;
      // A small image still goes (one PutObject)...
      await compatible.put("small.png", pngStream(1_000), { contentType: "image/png" });
      expect(seen).toEqual([]);
      // ...but the probe does not pass: the pause holds, naming the setting; the upload is aborted.
      const held = await failure(probeStore(compatible, { multipart: true }));
      expect(held).toMatchObject({ code: "checksum_refused" });
      expect(held.message).toContain("multipart");
      expect(held.message).toContain("AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED");
      expect(seen).toEqual(["POST create", "PUT part", "DELETE upload"]);
      // Not asked (another pause's probe, reuse's): the small put alone.
      await probeStore(compatible);

      // A store with no multipart at all (its images all fit one put): the probe still passes.
      refuse = "all";
      const heard: unknown[] = [];
      await probeStore(compatible, { multipart: true, onMultipartError: (error) => heard.push(error) });
      expect(heard).toHaveLength(1);
    } finally {
      await compatible.close();
      await proxy.close();
    }
  });
});
