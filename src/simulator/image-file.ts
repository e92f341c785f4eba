/**
 * An image file as the simulator serves it: a small encoded head and tail with optional
 * padding between them, generated on the fly. A 25 MB padded file never exists in memory; its
 * size is known up front for Content-Length.
 */
export interface ImageFile {
  contentType: string;
  /** Exact byte length of what `chunks()` yields. */
  size: number;
  /** The file's bytes in order; padding comes from one shared zero buffer. */
  chunks(): Generator<Buffer>;
}

/** How a format wraps padding: per-segment overhead, data cap, and how to frame one segment. */
export interface PaddingFormat {
  overheadBytes: number;
  maxDataBytes: number;
  /** Yields one whole padding segment of `dataBytes` zero bytes (header, data, trailer). */
  segment(dataBytes: number, zeros: Buffer): Generator<Buffer>;
}

/** Padding data is zeros: one buffer, allocated on first use and shared by every request. */
const ZERO_BUFFER_BYTES = 1 << 20;
let zeros: Buffer | undefined;
function sharedZeros(): Buffer {
  zeros ??= Buffer.alloc(ZERO_BUFFER_BYTES);
  return zeros;
}

/** Data lengths of the segments that bring `head + tail` up to at least `padTo` bytes. */
function planPadding(baseBytes: number, padTo: number, format: PaddingFormat): number[] {
  const plan: number[] = [];
  let missing = padTo - baseBytes;
  const maxData = Math.min(format.maxDataBytes, ZERO_BUFFER_BYTES);
  while (missing > 0) {
    // A segment never has less than its overhead, so the last one may overshoot by a few bytes.
    const data = Math.min(maxData, Math.max(0, missing - format.overheadBytes));
    plan.push(data);
    missing -= data + format.overheadBytes;
  }
  return plan;
}

export function paddedFile(
  contentType: string,
  head: Buffer,
  tail: Buffer,
  padTo: number,
  format: PaddingFormat,
): ImageFile {
  const plan = planPadding(head.length + tail.length, padTo, format);
  const size = head.length + tail.length + plan.reduce((sum, data) => sum + data + format.overheadBytes, 0);
  return {
    contentType,
    size,
    *chunks() {
      yield head;
      const buffer = sharedZeros();
      for (const data of plan) yield* format.segment(data, buffer);
      yield tail;
    },
  };
}
