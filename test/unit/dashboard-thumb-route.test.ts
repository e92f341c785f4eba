/**
 * The thumbnail route of an image over the thumbnailer's byte cap: a placeholder that says the
 * image is too large (size and limit), while the full image is still served.
 */

import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArchiveStore } from "../../src/archive/types.js";
import { imageRouter } from "../../src/dashboard/image-routes.js";
import { createThumbnailer, type Thumbnailer } from "../../src/dashboard/thumbs.js";
import type { Ledger } from "../../src/ledger/index.js";

const BIG = Buffer.alloc(100 * 1024, 7);
const KEY = "big-batch/huge.png";

let parent: string;
let thumbs: Thumbnailer;
let server: Server;
let base: string;
let reads = 0;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "kie-thumb-route-"));
  thumbs = await createThumbnailer({ parentDir: parent, maxInputBytes: 64 * 1024 });
  const ledger = {
    getRow: async (_batch: string, id: string) =>
      id === "huge"
        ? { images: [{ key: KEY, sha256: "a".repeat(64), bytes: BIG.length, contentType: "image/png" }] }
        : undefined,
  } as unknown as Pick<Ledger, "getRow">;
  const store: Pick<ArchiveStore, "get"> = {
    get: async (key) => {
      reads++;
      return key === KEY
        ? { body: Readable.from([BIG]), size: BIG.length, contentType: "image/png", etag: '"big"' }
        : undefined;
    },
  } as Pick<ArchiveStore, "get">;
  const app = express().use(imageRouter({ ledger, store, thumbnailer: thumbs }));
  server = app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/batches/big-batch/rows/huge`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await thumbs?.close();
  await rm(parent, { recursive: true, force: true });
});

describe("an image too large to thumbnail", () => {
  it("gets a placeholder saying so, with its size and the limit, on every view; the full image is still served", async () => {
    const reason =
      "the image is 0.1 MiB (102400 bytes), too large to thumbnail: the limit is 0.1 MiB (65536 bytes)";
    for (let view = 0; view < 2; view++) {
      const thumb = await fetch(`${base}/thumb/0`);
      expect(thumb.status).toBe(200);
      expect(thumb.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
      expect(thumb.headers.get("x-thumbnail")).toBe("placeholder");
      expect(thumb.headers.get("x-thumbnail-reason")).toBe(reason);
      // The tile says it too, in fixed words.
      expect(await thumb.text()).toContain(">too large to preview</text>");
    }
    expect(reads).toBe(1);
    const full = await fetch(`${base}/image/0`);
    expect(full.status).toBe(200);
    expect(full.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await full.arrayBuffer()).equals(BIG)).toBe(true);
  });
});
