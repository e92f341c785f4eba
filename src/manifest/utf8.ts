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
const CR = 0x0d;

/**
 * Yields the file's bytes, BOM removed, each chunk whole characters of valid UTF-8. `loneCr`: a
 * CR not followed by LF ends a line too, for the error's line and column (CSV reads it so).
 */
export async function* readUtf8Chunks(
  path: string,
  file: string,
  options: { loneCr?: boolean } = {},
): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  const position = new Utf8Position(file, options.loneCr === true);
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
  /** The last chunk ended with a CR (a line end): an LF opening the next is its second half. */
  private pendingCr = false;

  constructor(
    private readonly file: string,
    private readonly loneCr: boolean,
  ) {}

  /** Where this chunk's counting starts: past an LF that ends the previous chunk's CR. */
  private startOf(bytes: Uint8Array): number {
    return this.pendingCr && bytes[0] === LF ? 1 : 0;
  }

  advance(bytes: Uint8Array): void {
    const from = this.startOf(bytes);
    const { count, after } = lineBreaks(bytes, from, bytes.length, this.loneCr);
    if (after === -1) this.column += countCharacters(bytes, from, bytes.length);
    else {
      this.line += count;
      this.column = 1 + countCharacters(bytes, after, bytes.length);
    }
    if (bytes.length > 0) this.pendingCr = this.loneCr && bytes[bytes.length - 1] === CR;
  }

  errorAt(bytes: Uint8Array, offset: number, reason?: string): ManifestParseError {
    const end = Math.max(offset, 0);
    const from = Math.min(this.startOf(bytes), end);
    const { count, after } = lineBreaks(bytes, from, end, this.loneCr);
    const line = this.line + count;
    const column =
      after === -1 ? this.column + countCharacters(bytes, from, end) : 1 + countCharacters(bytes, after, end);
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

/**
 * The line ends in `bytes[from, end)`: each LF, and with `loneCr` each CR not followed by an LF (a
 * CR that ends the range counts: its LF, if any, opens the next chunk). `after`: the offset just
 * past the last one, -1 without any.
 */
function lineBreaks(
  bytes: Uint8Array,
  from: number,
  end: number,
  loneCr: boolean,
): { count: number; after: number } {
  let count = 0;
  let after = -1;
  for (let at = bytes.indexOf(LF, from); at !== -1 && at < end; at = bytes.indexOf(LF, at + 1)) {
    count++;
    after = at + 1;
  }
  if (!loneCr) return { count, after };
  for (let at = bytes.indexOf(CR, from); at !== -1 && at < end; at = bytes.indexOf(CR, at + 1)) {
    if (at + 1 < end && bytes[at + 1] === LF) continue;
    count++;
    after = Math.max(after, at + 1);
  }
  return { count, after };
}

function countCharacters(bytes: Uint8Array, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if ((bytes[i]! & 0xc0) !== 0x80) count++;
  return count;
}
