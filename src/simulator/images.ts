/**
 * The pictures a task "generates": deterministic for (prompt, seed, image_size, index), so a
 * test can tell two results apart or prove them equal by sha256, like the real model's "same
 * seed + same prompt = same output". Each is a picture worth a look in the dashboard's gallery:
 * a diagonal gradient between two colours of the prompt's hash, with soft discs and a wave
 * drawn over it, at the size's aspect ratio (a PNG of tens of KB; a JPEG of flat 8x8 blocks).
 */
import { createHash } from "node:crypto";
import type { ImageSize, OutputFormat } from "../kie/types.js";
import { type ImageFile, paddedFile } from "./image-file.js";
import { encodeJpeg, jpegPadding } from "./jpeg.js";
import { encodePng, pngPadding } from "./png.js";

/** Pixel sizes keep each size's aspect ratio, in multiples of 8 (JPEG blocks), long edge 384 (512 for hd). */
const DIMENSIONS: Record<ImageSize, { width: number; height: number }> = {
  square: { width: 384, height: 384 },
  square_hd: { width: 512, height: 512 },
  portrait_4_3: { width: 288, height: 384 },
  portrait_3_2: { width: 256, height: 384 },
  portrait_16_9: { width: 216, height: 384 },
  landscape_4_3: { width: 384, height: 288 },
  landscape_3_2: { width: 384, height: 256 },
  landscape_16_9: { width: 384, height: 216 },
};

export interface ImageSpec {
  prompt: string;
  seed: number;
  /** Unset is the API's default, landscape_4_3, and draws the same picture as naming it. */
  size?: ImageSize;
  /** Which of a task's images (0-based); each one differs. */
  index: number;
  format: OutputFormat;
}

type Rgb = [number, number, number];

function imageDimensions(size: ImageSize = "landscape_4_3"): { width: number; height: number } {
  return DIMENSIONS[size];
}

function imageDigest(spec: ImageSpec): Buffer {
  const key = JSON.stringify([spec.prompt, spec.seed, spec.size ?? "landscape_4_3", spec.index]);
  return createHash("sha256").update(key).digest();
}

/** A colour from three digest bytes, lifted away from black so pictures stay bright. */
function colourAt(digest: Buffer, at: number): Rgb {
  return [0, 1, 2].map((c) => 60 + Math.round((digest[(at + c) % digest.length]! / 255) * 190)) as Rgb;
}

/** The picture, as RGB bytes row by row: all of it comes from the digest. */
function paint(digest: Buffer, width: number, height: number): Uint8Array {
  const from = colourAt(digest, 0);
  const to = colourAt(digest, 3);
  const pixels = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2;
      const at = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) pixels[at + c] = from[c]! * (1 - t) + to[c]! * t;
    }
  }
  // Soft discs, each blended over its own bounding box only.
  const discs = 3 + (digest[6]! % 3);
  for (let i = 0; i < discs; i++) {
    const cx = (digest[7 + i * 4]! / 255) * width;
    const cy = (digest[8 + i * 4]! / 255) * height;
    const r = (0.12 + (digest[9 + i * 4]! / 255) * 0.25) * Math.min(width, height);
    const colour = colourAt(digest, 10 + i * 4);
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, Math.ceil(cx + r)); x++) {
        const dist2 = ((x - cx) ** 2 + (y - cy) ** 2) / (r * r);
        if (dist2 >= 1) continue;
        const alpha = 0.75 * (1 - dist2);
        const at = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) pixels[at + c] = pixels[at + c]! * (1 - alpha) + colour[c]! * alpha;
      }
    }
  }
  // A darker wave across the lower third.
  const frequency = 2 + (digest[30]! % 5);
  const phase = (digest[31]! / 255) * Math.PI * 2;
  const out = new Uint8Array(width * height * 3);
  for (let x = 0; x < width; x++) {
    const wave = Math.sin((x / width) * Math.PI * 2 * frequency + phase) * 0.08 * height + height * 0.7;
    for (let y = 0; y < height; y++) {
      const shade = y > wave ? 0.82 : 1;
      const at = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) out[at + c] = Math.min(255, Math.round(pixels[at + c]! * shade));
    }
  }
  return out;
}

/** A picture encoded: everything before the padding (head) and after it (tail). */
export interface EncodedImage {
  head: Buffer;
  tail: Buffer;
}

/** What tells two pictures apart: the same key, the same bytes. */
export function imageKey(spec: ImageSpec): string {
  return `${imageDigest(spec).toString("hex")}.${spec.format}`;
}

/** Draws and encodes the picture for `spec` (tens of ms of CPU: the simulator calls it on its drawing thread). */
export function encodeImage(spec: ImageSpec): EncodedImage {
  const digest = imageDigest(spec);
  const { width, height } = imageDimensions(spec.size);
  const pixels = paint(digest, width, height);
  const pixel = (x: number, y: number): Rgb => {
    const at = (y * width + x) * 3;
    return [pixels[at]!, pixels[at + 1]!, pixels[at + 2]!];
  };
  const comment = `kie-batch simulator ${digest.toString("hex")}`;
  // A JPEG of flat blocks takes each block's centre pixel.
  return spec.format === "jpg"
    ? encodeJpeg(width, height, (bx, by) => pixel(bx * 8 + 4, by * 8 + 4), comment)
    : encodePng(width, height, pixels, comment);
}

/** The file of an encoded picture, padded to at least `padTo` bytes. */
export function imageFile(parts: EncodedImage, format: OutputFormat, padTo = 0): ImageFile {
  const { head, tail } = parts;
  if (format === "jpg") return paddedFile("image/jpeg", head, tail, padTo, jpegPadding);
  return paddedFile("image/png", head, tail, padTo, pngPadding);
}
