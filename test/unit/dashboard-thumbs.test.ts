import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import sharp from "sharp";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createThumbnailer, type Thumbnailer, type ThumbSource } from "../../src/dashboard/thumbs.js";

const SHA = (n: number) => n.toString(16).padStart(64, "0");
let parent: string;
let thumbs: Thumbnailer;
let png: Buffer;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), "kie-thumbs-test-"));
  thumbs = await createThumbnailer({ parentDir: parent, maxInputBytes: 64 * 1024, timeoutMs: 200 });
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3a7" } })
    .png()
    .toBuffer();
});
afterEach(async () => {
  await thumbs.close();
  await rm(parent, { recursive: true, force: true });
});

/** An opener that counts its calls and hands out `bytes` (with `size` as the store's size). */
function opener(bytes: Buffer, size = bytes.length) {
  const calls = { n: 0, bodies: [] as Readable[] };
  const open = async (): Promise<ThumbSource> => {
    calls.n++;
    const body = Readable.from([bytes]);
    calls.bodies.push(body);
    return { body, size };
  };
  return { open, calls };
}

describe("thumbnails", () => {
  it("gives a placeholder, unread, for an image over the byte cap, saying it is too large (size and limit) on every view", async () => {
    const { open, calls } = opener(png, 10 * 1024 * 1024);
    const reason =
      "the image is 10.0 MiB (10485760 bytes), too large to thumbnail: the limit is 0.1 MiB (65536 bytes)";
    expect(await thumbs.get(SHA(1), open)).toEqual({
      kind: "placeholder",
      reason,
      label: "too large to preview",
    });
    expect(calls.bodies[0]!.destroyed).toBe(true);
    // Remembered, not read again, and still too large: not "does not decode".
    expect(await thumbs.get(SHA(1), open)).toEqual({
      kind: "placeholder",
      reason,
      label: "too large to preview",
    });
    expect(calls.n).toBe(1);
  });

  it("gives a placeholder, not an error, when the store fails to hand the image out", async () => {
    const thumb = await thumbs.get(SHA(2), async () => {
      throw new Error("S3 get failed (HTTP 503)");
    });
    expect(thumb).toEqual({ kind: "placeholder", reason: "S3 get failed (HTTP 503)" });
  });

  it("gives up on an image that does not arrive in time, and tries it again on the next view", async () => {
    const stuck = new PassThrough();
    const slow = await thumbs.get(SHA(3), async () => ({ body: stuck, size: 100 }));
    expect(slow).toMatchObject({ kind: "placeholder", reason: expect.stringMatching(/within 200 ms/) });
    expect(stuck.destroyed).toBe(true);
    // A slow store is not a broken image: the next view reads it again.
    expect((await thumbs.get(SHA(3), opener(png).open)).kind).toBe("image");
  });

  it("serves the thumbnail when its cache cannot be written", async () => {
    for (const dir of await readdir(parent)) await rm(join(parent, dir), { recursive: true });
    const thumb = await thumbs.get(SHA(4), opener(png).open);
    expect(thumb.kind).toBe("image");
    const meta = await sharp((thumb as { bytes: Buffer }).bytes).metadata();
    expect([meta.width, meta.height]).toEqual([256, 256]);
  });

  it("remembers an image that does not decode, and does not read it again", async () => {
    const { open, calls } = opener(Buffer.from("not an image at all"));
    const first = await thumbs.get(SHA(5), open);
    expect(first.kind).toBe("placeholder");
    expect(await thumbs.get(SHA(5), open)).toEqual(first);
    expect(calls.n).toBe(1);
  });
});
