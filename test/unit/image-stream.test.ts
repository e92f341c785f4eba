/** The download's pass-through checks an image's end as well as its start (a body cut short). */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ImageStream } from "../../src/archive/image-stream.js";
import { jpegBytes, pngBytes } from "../helpers/image-server.js";

async function through(body: Buffer, chunk = 1000, checkEnd = true): Promise<unknown> {
  const image = new ImageStream({ source: "cdn.example", maxBytes: 10_000_000, checkEnd });
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += chunk) parts.push(body.subarray(at, at + chunk));
  Readable.from(parts).pipe(image);
  image.resume();
  return image.done.catch((error: unknown) => error);
}

describe("ImageStream's end check", () => {
  it("keeps a whole PNG and a whole JPEG, one with a little padding after its end marker", async () => {
    expect(await through(await pngBytes(5_000))).toMatchObject({ bytes: 5_000 });
    expect(await through(jpegBytes(5_000))).toMatchObject({ bytes: 5_000 });
    const padded = Buffer.concat([jpegBytes(5_000), Buffer.alloc(20)]);
    expect(await through(padded, 7)).toMatchObject({ bytes: 5_020 });
  });

  it("refuses one cut short, as transient", async () => {
    const png = await pngBytes(5_000);
    expect(await through(png.subarray(0, 4_000))).toMatchObject({
      code: "transient",
      message: expect.stringContaining("ends without its PNG IEND chunk after 4000 bytes"),
    });
    expect(await through(jpegBytes(5_000).subarray(0, 4_000))).toMatchObject({
      code: "transient",
      message: expect.stringContaining("ends without its JPEG end marker after 4000 bytes"),
    });
  });

  it("with the end check off (a body of declared length), keeps an image with a trailer after its end", async () => {
    const png = Buffer.concat([await pngBytes(5_000), Buffer.alloc(16, 7)]);
    expect(await through(png, 1000, false)).toMatchObject({ bytes: 5_016 });
    expect(await through(png)).toMatchObject({ code: "transient" });
  });
});
