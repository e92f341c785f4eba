/**
 * Reads a file as validated UTF-8, in chunks, in constant memory. Every chunk handed on ends on
 * a character boundary (a split multi-byte character is carried to the next chunk), and a
 * leading byte-order mark is dropped. Invalid bytes throw a ManifestParseError naming the line
 * and column of the first bad byte.
 */

import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { isManifestParseError, ManifestParseError } from "./errors.js";

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const LF = 0x0a;

/** Yields the file's bytes, BOM removed, each chunk whole characters of valid UTF-8. */
export async function* readUtf8Chunks(path: string, file: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  const position = new Utf8Position(file);
  let carry: Buffer | undefined;
  let atStart = true;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let block = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
      carry = undefined;
      if (atStart) {
        if (block.length < BOM.length && BOM.subarray(0, block.length).equals(block)) {
          carry = block;
          continue;
        }
        atStart = false;
        if (block.subarray(0, BOM.length).equals(BOM)) block = block.subarray(BOM.length);
      }
      const end = completeLength(block);
      if (end < block.length) carry = Buffer.from(block.subarray(end));
      const body = block.subarray(0, end);
      if (!isUtf8(body)) throw position.errorAt(body, firstInvalidUtf8(body));
      position.advance(body);
      if (body.length > 0) yield body;
    }
    if (carry !== undefined) {
      throw position.errorAt(carry, 0, "a character is cut off at the end of the file");
    }
  } catch (error) {
    if (isManifestParseError(error)) throw error;
    throw new ManifestParseError({
      code: "unreadable",
      file,
      reason: `cannot read the file: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  } finally {
    stream.destroy();
  }
}

/** Yields the file's text, BOM removed, in chunks that never split a character. */
export async function* readUtf8Text(path: string, file: string): AsyncGenerator<string> {
  for await (const chunk of readUtf8Chunks(path, file)) yield chunk.toString("utf8");
}

/**
 * Length of the prefix of `bytes` that ends on a character boundary: a trailing lead byte whose
 * continuation bytes have not arrived yet is left out (and carried by the caller).
 */
function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const byte = bytes[n - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return back < need ? n - back : n;
  }
  return n;
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f; // no UTF-16 surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing past U+10FFFF
    } else return i;
    if (i + need >= bytes.length) return i;
    const second = bytes[i + 1]!;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) {
      const next = bytes[i + k]!;
      if ((next & 0xc0) !== 0x80) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Tracks the line and column (in characters) of the next byte, to place an encoding error. */
class Utf8Position {
  private line = 1;
  private column = 1;

  constructor(private readonly file: string) {}

  advance(bytes: Uint8Array): void {
    const lastLf = bytes.lastIndexOf(LF);
    if (lastLf === -1) {
      this.column += countCharacters(bytes, 0, bytes.length);
      return;
    }
    this.line += countLineFeeds(bytes, lastLf + 1);
    this.column = 1 + countCharacters(bytes, lastLf + 1, bytes.length);
  }

  errorAt(bytes: Uint8Array, offset: number, reason?: string): ManifestParseError {
    const before = bytes.subarray(0, Math.max(offset, 0));
    const lastLf = before.lastIndexOf(LF);
    const line = this.line + countLineFeeds(before, before.length);
    const column =
      lastLf === -1
        ? this.column + countCharacters(before, 0, before.length)
        : 1 + countCharacters(before, lastLf + 1, before.length);
    const byte = bytes[offset];
    const shown = byte === undefined ? "" : ` (byte 0x${byte.toString(16).toUpperCase().padStart(2, "0")})`;
    return new ManifestParseError({
      code: "encoding",
      file: this.file,
      line,
      column,
      reason: `${reason ?? "not valid UTF-8"}${shown}; save the file as UTF-8`,
    });
  }
}

function countLineFeeds(bytes: Uint8Array, end: number): number {
  let count = 0;
  let at = bytes.indexOf(LF);
  while (at !== -1 && at < end) {
    count++;
    at = bytes.indexOf(LF, at + 1);
  }
  return count;
}

function countCharacters(bytes: Uint8Array, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if ((bytes[i]! & 0xc0) !== 0x80) count++;
  return count;
}
