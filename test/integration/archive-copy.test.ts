import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archiveFromUrl } from "../../src/archive/copy.js";
import { createFolderStore } from "../../src/archive/folder-store.js";
import { createS3Store } from "../../src/archive/s3-store.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import {
  digestOf,
  type ImageServer,
  jpegBytes,
  pngStream,
  startImageServer,
} from "../helpers/image-server.js";
import { type RunningS3rver, startS3rver } from "../helpers/s3rver.js";

let s3: RunningS3rver;
let client: S3Client;
let s3Store: ArchiveStore;
let dir: string;
let folder: ArchiveStore;
let images: ImageServer;

beforeAll(async () => {
  [s3, images, dir] = await Promise.all([
    startS3rver(),
    startImageServer(),
    mkdtemp(join(tmpdir(), "kie-copy-")),
  ]);
  client = new S3Client(s3.clientOptions);
  s3Store = createS3Store({ ...s3.clientOptions, bucket: s3.bucket, prefix: "p/" });
  folder = createFolderStore(dir);
});
afterAll(async () => {
  await s3Store?.close();
  await folder?.close();
  client?.destroy();
  await Promise.all([s3?.close(), images?.close(), dir && rm(dir, { recursive: true, force: true })]);
});

describe("archiveFromUrl", () => {
  it("streams a PNG into S3 under <key>.png and reports its sha256 and size", async () => {
    images.route("/result/1.png", { body: () => pngStream(3_000_000, 9) });
    const archived = await archiveFromUrl({
      url: images.url("/result/1.png"),
      store: s3Store,
      key: "batch-1/row-1",
      allowHosts: [images.host],
      metadata: { "task-id": "t-1", batch: "batch-1", "row-id": "row-1" },
    });
    const expected = await digestOf(pngStream(3_000_000, 9));
    expect(archived).toEqual({
      key: "batch-1/row-1.png",
      location: `s3://${s3.bucket}/p/batch-1/row-1.png`,
      contentType: "image/png",
      ...expected,
    });
    const stored = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "p/batch-1/row-1.png" }));
    expect(await digestOf(stored.Body as Readable)).toEqual(expected);
    expect(stored.ContentType).toBe("image/png");
    expect(stored.Metadata).toEqual({ "task-id": "t-1", batch: "batch-1", "row-id": "row-1" });
  });

  it("streams a JPEG into a folder under <key>.jpg", async () => {
    const jpeg = jpegBytes(40_000);
    images.route("/result/2", { body: jpeg });
    const archived = await archiveFromUrl({
      url: images.url("/result/2"),
      store: folder,
      key: "batch-1/row-2",
      allowHosts: [images.host],
    });
    expect(archived).toMatchObject({ key: "batch-1/row-2.jpg", contentType: "image/jpeg", bytes: 40_000 });
    expect(archived.location).toBe(join(dir, "batch-1", "row-2.jpg"));
    expect((await readFile(archived.location)).equals(jpeg)).toBe(true);
  });

  it("a body that is not an image stores nothing", async () => {
    images.route("/result/html", { body: "<html>expired</html>" });
    await expect(
      archiveFromUrl({
        url: images.url("/result/html"),
        store: folder,
        key: "b2/html",
        allowHosts: [images.host],
      }),
    ).rejects.toMatchObject({ name: "DownloadError", code: "not_image" });
    await expect(readdir(join(dir, "b2"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("an expired URL is a DownloadError the caller can refresh", async () => {
    images.route("/result/gone.png", { status: 410 });
    await expect(
      archiveFromUrl({
        url: images.url("/result/gone.png"),
        store: s3Store,
        key: "b/gone",
        allowHosts: [images.host],
      }),
    ).rejects.toMatchObject({ name: "DownloadError", code: "expired", retryable: false });
  });

  it("a download cut mid-body fails with a transient DownloadError and stores nothing", async () => {
    images.route("/result/cut.png", {
      body: () => pngStream(12_000_000),
      headers: { "content-length": "12000000" },
      cutAfterBytes: 9_000_000,
    });
    for (const store of [s3Store, folder]) {
      await expect(
        archiveFromUrl({
          url: images.url("/result/cut.png"),
          store,
          key: "b3/cut",
          allowHosts: [images.host],
        }),
      ).rejects.toMatchObject({ name: "DownloadError", code: "transient", retryable: true });
      expect(await store.head("b3/cut.png")).toBeUndefined();
    }
  });

  it("a put that fails destroys the download and propagates the store's error", async () => {
    let served: Readable | undefined;
    images.route("/result/big.png", {
      body: () => {
        served = pngStream(50_000_000);
        return served;
      },
    });
    await expect(
      archiveFromUrl({
        url: images.url("/result/big.png"),
        store: s3Store,
        key: "b4/big",
        allowHosts: [images.host],
        metadata: { prompt: "非ASCII" },
      }),
    ).rejects.toMatchObject({ name: "ArchiveStoreError", code: "invalid_metadata" });
    // The server sees its response closed long before the 50 MB were sent.
    await expect.poll(() => served?.destroyed).toBe(true);
    expect(served?.readableEnded).toBe(false);
  });

  it("a refused host fails before anything is fetched", async () => {
    images.route("/result/private.png", { body: () => pngStream(1000) });
    const before = images.requests.length;
    await expect(
      archiveFromUrl({ url: images.url("/result/private.png"), store: s3Store, key: "b5/x", allowHosts: [] }),
    ).rejects.toMatchObject({ name: "DownloadError", code: "host_refused", host: images.host });
    expect(images.requests.length).toBe(before);
  });
});
