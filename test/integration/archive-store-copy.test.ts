/**
 * `ArchiveStore.copy`, the same contract on both stores (the folder store and S3 on s3rver): the
 * bytes arrive exactly under the new key, with the copy's own content type and metadata (the
 * source's are replaced, the source is left as it was); a missing source is an ArchiveStoreError
 * `failed`; metadata S3 would refuse is refused before anything is sent. The folder store also
 * says what it copied (bytes and sha256). S3 copies only while the source's ETag is the one given
 * (CopySourceIfMatch), and a store that refuses the copy's checksum header gets the copy again
 * without it, once, and never the header again.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFolderStore } from "../../src/archive/folder-store.js";
import { createS3Store } from "../../src/archive/s3-store.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { startChecksumRefusingS3 } from "../helpers/checksum-refusing-s3.js";
import { type RunningS3rver, startS3rver } from "../helpers/s3rver.js";

const BYTES = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 31) % 256));
const SHA = createHash("sha256").update(BYTES).digest("hex");

let s3: RunningS3rver;
let client: S3Client;
let dir: string;
const stores: Record<"folder" | "s3", ArchiveStore> = {} as never;

beforeAll(async () => {
  s3 = await startS3rver();
  client = new S3Client(s3.clientOptions);
  dir = await mkdtemp(join(tmpdir(), "kie-copy-"));
  stores.folder = createFolderStore(dir);
  stores.s3 = createS3Store({ ...s3.clientOptions, bucket: s3.bucket, prefix: "arch/" });
});
afterAll(async () => {
  await stores.folder?.close();
  await stores.s3?.close();
  client?.destroy();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The stored bytes of `key`, read outside the store. */
async function bytesOf(kind: "folder" | "s3", key: string): Promise<Buffer> {
  if (kind === "folder") return readFile(join(dir, key));
  const answer = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `arch/${key}` }));
  return Buffer.from(await answer.Body!.transformToByteArray());
}

describe.each(["folder", "s3"] as const)("%s store: copy", (kind) => {
  it("copies the exact bytes to the new key with its own metadata, leaving the source as it was", async () => {
    const store = stores[kind];
    await store.put("a/src.png", Readable.from([BYTES]), {
      contentType: "image/png",
      metadata: { "task-id": "t-1", "row-id": "src" },
    });
    const result = await store.copy("a/src.png", "b/dst.png", {
      contentType: "image/png",
      metadata: { "task-id": "t-1", "row-id": "dst", "reused-from": "a/src" },
    });
    expect(
      createHash("sha256")
        .update(await bytesOf(kind, "b/dst.png"))
        .digest("hex"),
    ).toBe(SHA);
    expect(await store.head("b/dst.png")).toMatchObject({
      size: BYTES.length,
      metadata: { "task-id": "t-1", "row-id": "dst", "reused-from": "a/src" },
    });
    expect(await store.head("a/src.png")).toMatchObject({
      size: BYTES.length,
      metadata: { "task-id": "t-1", "row-id": "src" },
    });
    if (kind === "folder") expect(result).toEqual({ bytes: BYTES.length, sha256: SHA });
    // s3rver answers no checksum of the copy (real S3 does when asked): nothing is claimed then.
    else expect(result.sha256 === undefined || result.sha256 === SHA).toBe(true);
  });

  it("a missing source is an ArchiveStoreError that is not retried, and writes nothing", async () => {
    const store = stores[kind];
    const error = await store.copy("a/none.png", "b/none.png", { contentType: "image/png" }).then(
      () => undefined,
      (e: unknown) => e as { name?: string; code?: string; retryable?: boolean },
    );
    expect(error).toMatchObject({ name: "ArchiveStoreError", retryable: false });
    expect(await store.head("b/none.png")).toBeUndefined();
  });

  it("metadata S3 would refuse is refused before anything is copied", async () => {
    const store = stores[kind];
    await store.put("a/m.png", Readable.from([BYTES]), { contentType: "image/png" });
    await expect(
      store.copy("a/m.png", "b/m.png", { contentType: "image/png", metadata: { "row-id": "狐狸" } }),
    ).rejects.toMatchObject({ code: "invalid_metadata" });
    expect(await store.head("b/m.png")).toBeUndefined();
  });
});

describe("s3 store: copy preconditions and checksums", () => {
  it("the HEAD's ETag goes with the copy as CopySourceIfMatch", async () => {
    const proxy = await startChecksumRefusingS3(s3.endpoint);
    // Refusing only checksum headers: this store sends none after its first copy.
    const store = createS3Store({
      ...s3.clientOptions,
      endpoint: proxy.endpoint,
      bucket: s3.bucket,
      prefix: "m/",
    });
    try {
      await store.put("a/src.png", Readable.from([BYTES]), { contentType: "image/png" });
      const head = await store.head("a/src.png");
      expect(head?.etag).toMatch(/^"[0-9a-f]{32}"$/);
      await store.copy("a/src.png", "b/dst.png", { contentType: "image/png", ifMatch: head!.etag! });
      expect(proxy.copies.at(-1)?.["x-amz-copy-source-if-match"]).toBe(head?.etag);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it("a store that refuses the checksum header: the copy goes again without it, and later copies never send it", async () => {
    const proxy = await startChecksumRefusingS3(s3.endpoint);
    const store = createS3Store({
      ...s3.clientOptions,
      endpoint: proxy.endpoint,
      bucket: s3.bucket,
      prefix: "r/",
    });
    try {
      await store.put("a/src.png", Readable.from([BYTES]), { contentType: "image/png" });
      const first = await store.copy("a/src.png", "b/one.png", { contentType: "image/png" });
      expect(first).toEqual({ checksumRefused: true });
      expect(proxy.refused).toBe(1);
      const second = await store.copy("a/src.png", "b/two.png", { contentType: "image/png" });
      expect(second).toEqual({});
      expect(proxy.refused).toBe(1);
      expect(proxy.copies).toHaveLength(3);
      for (const key of ["r/b/one.png", "r/b/two.png"]) {
        const answer = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
        const bytes = Buffer.from(await answer.Body!.transformToByteArray());
        expect(createHash("sha256").update(bytes).digest("hex")).toBe(SHA);
      }
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});
