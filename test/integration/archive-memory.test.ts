import type { Readable } from "node:stream";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archiveFromUrl } from "../../src/archive/copy.js";
import { createS3Store } from "../../src/archive/s3-store.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { digestOf, type ImageServer, pngStream, startImageServer } from "../helpers/image-server.js";
import { type RunningS3rver, startS3rver } from "../helpers/s3rver.js";

const MiB = 1024 * 1024;
const IMAGE_BYTES = 120 * MiB;
/** Upload holds about (queueSize + 1) x 8 MiB parts; s3rver and the image server share the process. */
const MAX_RSS_GROWTH = 80 * MiB;

let s3: RunningS3rver;
let images: ImageServer;
let store: ArchiveStore;

beforeAll(async () => {
  [s3, images] = await Promise.all([startS3rver(), startImageServer()]);
  store = createS3Store({ ...s3.clientOptions, bucket: s3.bucket });
});
afterAll(async () => {
  await store?.close();
  await Promise.all([s3?.close(), images?.close()]);
});

describe("archive memory", () => {
  it(`archives a ${IMAGE_BYTES / MiB} MB image to S3 while RSS grows by less than ${MAX_RSS_GROWTH / MiB} MB`, async () => {
    images.route("/huge.png", { body: () => pngStream(IMAGE_BYTES, 3) });
    images.route("/warm-up.png", { body: () => pngStream(20 * MiB, 4) });
    // Load the SDK, undici and s3rver code paths (and their one-off allocations) first.
    await archiveFromUrl({
      url: images.url("/warm-up.png"),
      store,
      key: "warm-up",
      allowHosts: [images.host],
    });
    global.gc?.();

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    let archived: Awaited<ReturnType<typeof archiveFromUrl>>;
    try {
      archived = await archiveFromUrl({
        url: images.url("/huge.png"),
        store,
        key: "huge",
        allowHosts: [images.host],
      });
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = peak - before;
    const report = `RSS before ${(before / MiB).toFixed(0)} MB, peak ${(peak / MiB).toFixed(0)} MB`;

    expect(archived.bytes).toBe(IMAGE_BYTES);
    // Measured here: about 48 MB streaming; about 200 MB when the body is buffered whole.
    expect(growth, report).toBeLessThan(MAX_RSS_GROWTH);

    const client = new S3Client(s3.clientOptions);
    try {
      const stored = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "huge.png" }));
      expect((await digestOf(stored.Body as Readable)).sha256).toBe(archived.sha256);
    } finally {
      client.destroy();
    }
  }, 60_000);
});
