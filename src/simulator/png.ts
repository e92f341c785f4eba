/**
 * A minimal PNG encoder (8-bit RGB, Sub-filtered rows, one IDAT) with private ancillary padding chunks. Decoders
 * skip unknown ancillary chunks, so a padded file is still a valid image.
 */
import { crc32, deflateSync } from "node:zlib";
import type { PaddingFormat } from "./image-file.js";

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Lowercase first letter: ancillary; lowercase second: private; uppercase third: reserved bit clear. */
const PNG_PAD_CHUNK_TYPE = "paDd";

function pngChunk(type: string, data: Buffer): Buffer {
  const typeBytes = Buffer.from(type, "latin1");
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  typeBytes.copy(out, 4);
  data.copy(out, 8);
  out.writeUInt32BE(crc32(data, crc32(typeBytes)), 8 + data.length);
  return out;
}

/** Everything before IEND (head) and IEND itself (tail), so padding can go between. */
export function encodePng(
  width: number,
  height: number,
  /** RGB bytes, row by row (`width * height * 3`). */
  rgb: Uint8Array,
  comment: string,
): { head: Buffer; tail: Buffer } {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  // compression, filter and interlace methods stay 0
  const stride = 1 + width * 3;
  const raw = Buffer.alloc(stride * height);
  // Filter type 1 (Sub) on every row: each byte is stored as its difference from the pixel to
  // its left, so smooth gradients deflate to a fraction of their raw size.
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    const src = y * width * 3;
    raw[row] = 1;
    raw[row + 1] = rgb[src]!;
    raw[row + 2] = rgb[src + 1]!;
    raw[row + 3] = rgb[src + 2]!;
    for (let i = 3; i < width * 3; i++) raw[row + 1 + i] = (rgb[src + i]! - rgb[src + i - 3]!) & 0xff;
  }
  const text = Buffer.from(`Comment\0${comment}`, "latin1");
  const head = Buffer.concat([
    SIGNATURE,
    pngChunk("IHDR", ihdr),
    pngChunk("tEXt", text),
    pngChunk("IDAT", deflateSync(raw)),
  ]);
  return { head, tail: pngChunk("IEND", Buffer.alloc(0)) };
}

const padTypeBytes = Buffer.from(PNG_PAD_CHUNK_TYPE, "latin1");
/** CRC of a full-size padding chunk, computed once per data length (almost always one length). */
const crcByLength = new Map<number, number>();

export const pngPadding: PaddingFormat = {
  overheadBytes: 12,
  maxDataBytes: 2 ** 31 - 1,
  *segment(dataBytes, zeros) {
    const data = zeros.subarray(0, dataBytes);
    let crc = crcByLength.get(dataBytes);
    if (crc === undefined) {
      crc = crc32(data, crc32(padTypeBytes));
      if (dataBytes === zeros.length) crcByLength.set(dataBytes, crc);
    }
    const header = Buffer.alloc(8);
    header.writeUInt32BE(dataBytes, 0);
    padTypeBytes.copy(header, 4);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32BE(crc, 0);
    yield header;
    yield data;
    yield trailer;
  },
};
