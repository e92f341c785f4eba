/**
 * The pictures a task "generates": small, deterministic for (prompt, seed, image_size, index),
 * so a test can tell two results apart or prove them equal by sha256, like the real model's
 * "same seed + same prompt = same output".
 */
import { createHash } from "node:crypto";
import type { ImageSize, OutputFormat } from "../kie/types.js";
import { type ImageFile, paddedFile } from "./image-file.js";
import { encodeJpeg, jpegPadding } from "./jpeg.js";
import { encodePng, pngPadding } from "./png.js";

/** Pixel sizes keep each size's aspect ratio, in multiples of 8 (JPEG blocks) and small. */
const DIMENSIONS: Record<ImageSize, { width: number; height: number }> = {
  square: { width: 48, height: 48 },
  square_hd: { width: 64, height: 64 },
  portrait_4_3: { width: 48, height: 64 },
  portrait_3_2: { width: 48, height: 72 },
  portrait_16_9: { width: 40, height: 72 },
  landscape_4_3: { width: 64, height: 48 },
  landscape_3_2: { width: 72, height: 48 },
  landscape_16_9: { width: 72, height: 40 },
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

function imageDimensions(size: ImageSize = "landscape_4_3"): { width: number; height: number } {
  return DIMENSIONS[size];
}

function imageDigest(spec: ImageSpec): Buffer {
  const key = JSON.stringify([spec.prompt, spec.seed, spec.size ?? "landscape_4_3", spec.index]);
  return createHash("sha256").update(key).digest();
}

/** The file for `spec`, padded to at least `padTo` bytes. Encoding is cheap: images are tiny. */
export function renderImage(spec: ImageSpec, padTo = 0): ImageFile {
  const digest = imageDigest(spec);
  const { width, height } = imageDimensions(spec.size);
  const blocksX = width / 8;
  const blocksY = height / 8;
  // A diagonal blend between two colours from the digest, each 8x8 block nudged by another byte.
  const blockColour = (bx: number, by: number): [number, number, number] => {
    const t = (bx + by) / Math.max(1, blocksX + blocksY - 2);
    const nudge = (digest[(6 + bx * 7 + by * 13) % digest.length]! % 48) - 24;
    const channel = (c: number) =>
      Math.max(0, Math.min(255, Math.round(digest[c]! * (1 - t) + digest[c + 3]! * t + nudge)));
    return [channel(0), channel(1), channel(2)];
  };
  const comment = `kie-batch simulator ${digest.toString("hex")}`;
  if (spec.format === "jpg") {
    const { head, tail } = encodeJpeg(width, height, blockColour, comment);
    return paddedFile("image/jpeg", head, tail, padTo, jpegPadding);
  }
  const { head, tail } = encodePng(width, height, (x, y) => blockColour(x >> 3, y >> 3), comment);
  return paddedFile("image/png", head, tail, padTo, pngPadding);
}
