/**
 * A minimal baseline JPEG encoder for images made of flat 8x8 blocks: every block has only a DC
 * coefficient, so the entropy data is one DC difference and an end-of-block per block and
 * component. Enough for a small, valid, deterministic picture without an imaging library.
 */
import type { PaddingFormat } from "./image-file.js";

/** Standard luminance DC table (ITU T.81 K.3): code lengths 1..16 and the categories 0..11. */
const DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_SYMBOLS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/** Flat blocks need a single AC symbol, end-of-block (0x00): one 1-bit code. */
const AC_COUNTS = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const AC_SYMBOLS = [0x00];
/** DC is quantised by 8, so a flat block's coefficient is exactly its level-shifted value. */
const DC_QUANT = 8;

/** JPEG marker segments may carry at most 65535 - 2 length bytes of data. */
const JPEG_MAX_SEGMENT_DATA = 65533;

function segment(marker: number, data: Buffer): Buffer {
  const out = Buffer.alloc(4 + data.length);
  out[0] = 0xff;
  out[1] = marker;
  out.writeUInt16BE(data.length + 2, 2);
  data.copy(out, 4);
  return out;
}

/** Canonical Huffman codes from per-length counts (T.81 Annex C). */
function huffmanCodes(counts: number[], symbols: number[]): Map<number, { code: number; length: number }> {
  const codes = new Map<number, { code: number; length: number }>();
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < counts[length - 1]!; i++) codes.set(symbols[k++]!, { code: code++, length });
    code <<= 1;
  }
  return codes;
}

const DC_CODES = huffmanCodes(DC_COUNTS, DC_SYMBOLS);
const EOB = huffmanCodes(AC_COUNTS, AC_SYMBOLS).get(0x00)!;

class BitWriter {
  private readonly bytes: number[] = [];
  private current = 0;
  private filled = 0;

  write(value: number, length: number): void {
    for (let bit = length - 1; bit >= 0; bit--) {
      this.current = (this.current << 1) | ((value >> bit) & 1);
      if (++this.filled === 8) this.flushByte();
    }
  }

  /** Pads the last byte with 1-bits, as T.81 asks, and returns the stuffed bytes. */
  finish(): Buffer {
    if (this.filled > 0) this.write(0xff, 8 - this.filled);
    return Buffer.from(this.bytes);
  }

  private flushByte(): void {
    this.bytes.push(this.current);
    // A 0xFF data byte is followed by 0x00 so a decoder does not read it as a marker.
    if (this.current === 0xff) this.bytes.push(0x00);
    this.current = 0;
    this.filled = 0;
  }
}

function toYCbCr([r, g, b]: [number, number, number]): [number, number, number] {
  const clamp = (value: number) => Math.max(0, Math.min(255, Math.round(value)));
  return [
    clamp(0.299 * r + 0.587 * g + 0.114 * b),
    clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
    clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b),
  ];
}

/**
 * Head: SOI, JFIF APP0 and a comment (padding COM segments may follow it); tail: tables, frame,
 * scan and EOI. Width and height must be multiples of 8.
 */
export function encodeJpeg(
  width: number,
  height: number,
  blockColour: (blockX: number, blockY: number) => [number, number, number],
  comment: string,
): { head: Buffer; tail: Buffer } {
  const app0 = Buffer.from([0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0, 0]);
  const head = Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xe0, app0),
    segment(0xfe, Buffer.from(comment)),
  ]);

  const dqt = Buffer.alloc(65, 1);
  dqt[0] = 0x00; // 8-bit precision, table 0
  dqt[1] = DC_QUANT; // the first entry (zig-zag order) quantises DC
  const sof = Buffer.alloc(15);
  sof[0] = 8;
  sof.writeUInt16BE(height, 1);
  sof.writeUInt16BE(width, 3);
  sof[5] = 3;
  for (let c = 0; c < 3; c++) sof.set([c + 1, 0x11, 0], 6 + c * 3);
  const dht = Buffer.from([0x00, ...DC_COUNTS, ...DC_SYMBOLS, 0x10, ...AC_COUNTS, ...AC_SYMBOLS]);
  const sos = Buffer.from([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);

  const bits = new BitWriter();
  const previous = [0, 0, 0];
  for (let by = 0; by < height / 8; by++) {
    for (let bx = 0; bx < width / 8; bx++) {
      const components = toYCbCr(blockColour(bx, by));
      for (let c = 0; c < 3; c++) {
        const dc = components[c]! - 128;
        const diff = dc - previous[c]!;
        previous[c] = dc;
        const category = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
        const { code, length } = DC_CODES.get(category)!;
        bits.write(code, length);
        // Negative differences are sent as their one's complement in `category` bits.
        if (category > 0) bits.write(diff > 0 ? diff : diff + (1 << category) - 1, category);
        bits.write(EOB.code, EOB.length);
      }
    }
  }

  const tail = Buffer.concat([
    segment(0xdb, dqt),
    segment(0xc0, sof),
    segment(0xc4, dht),
    segment(0xda, sos),
    bits.finish(),
    Buffer.from([0xff, 0xd9]),
  ]);
  return { head, tail };
}

export const jpegPadding: PaddingFormat = {
  overheadBytes: 4,
  maxDataBytes: JPEG_MAX_SEGMENT_DATA,
  *segment(dataBytes, zeros) {
    const header = Buffer.from([0xff, 0xfe, 0, 0]);
    header.writeUInt16BE(dataBytes + 2, 2);
    yield header;
    yield zeros.subarray(0, dataBytes);
  },
};
