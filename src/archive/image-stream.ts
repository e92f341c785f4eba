import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { DownloadError } from "./download-error.js";
import { type ImageType, MAGIC_BYTES_NEEDED, sniffImageType } from "./image-type.js";

export interface ImageDigest {
  /** Lower-case hex sha256 of every byte that passed. */
  sha256: string;
  bytes: number;
}

export interface ImageStreamOptions {
  /** For error messages: where the bytes come from (`host` or `host:port`). */
  source: string;
  /** Refuse bodies longer than this many bytes. */
  maxBytes: number;
  /**
   * Check that the image ends as its format does. Only where nothing else can tell a body cut
   * short: one whose end is the connection closing (no Content-Length, not chunked; undici fails
   * a short body of either kind). An image with bytes after its end marker (some encoders append a
   * trailer) is then still kept when its length was declared. @defaultValue true
   */
  checkEnd?: boolean;
}

/** Bytes kept from the end of a body: a JPEG may carry a little padding after its end marker. */
const TAIL_BYTES = 64;
/** A PNG ends with its IEND chunk: type and CRC (the zero length before them is not needed). */
const PNG_IEND = Buffer.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
/** A JPEG's end-of-image marker; inside the compressed data 0xFF is always followed by 0x00 or a restart marker. */
const JPEG_EOI = Buffer.from([0xff, 0xd9]);

/** Whether the last bytes of a body hold its format's end: PNG's IEND last, JPEG's EOI in its tail. */
function endsWhole(kind: ImageType["ext"] | undefined, tail: Buffer): boolean {
  if (kind === "png") return tail.subarray(-PNG_IEND.length).equals(PNG_IEND);
  if (kind === "jpg") return tail.includes(JPEG_EOI);
  return true;
}

/**
 * A pass-through that checks the magic bytes before the first byte goes out, hashes and counts
 * everything on the way, and at the end checks that the image ends as its format does. Holds back at most the first MAGIC_BYTES_NEEDED bytes; memory
 * stays bounded by the stream buffers, whatever the image size.
 *
 * Errors are reported through `type` and `done` (and to whoever pipes the stream); a listener
 * is always attached so an error nobody reads never crashes the process.
 */
export class ImageStream extends Transform {
  /** Resolves once the first bytes proved a PNG or JPEG; rejects with `not_image` otherwise. */
  readonly type: Promise<ImageType>;
  /** Resolves when the last byte has passed; rejects if the stream fails or is destroyed first. */
  readonly done: Promise<ImageDigest>;

  private readonly source: string;
  private readonly maxBytes: number;
  private readonly checkEnd: boolean;
  private readonly hash = createHash("sha256");
  private bytes = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private sniffed = false;
  private kind: ImageType["ext"] | undefined;
  /** The last bytes that passed (at most TAIL_BYTES): where the image's end marker must be. */
  private tail: Buffer = Buffer.alloc(0);
  private settleType!: { resolve(type: ImageType): void; reject(error: unknown): void };
  private settleDone!: { resolve(digest: ImageDigest): void; reject(error: unknown): void };
  private finishedCleanly = false;

  constructor(options: ImageStreamOptions) {
    super();
    this.source = options.source;
    this.maxBytes = options.maxBytes;
    this.checkEnd = options.checkEnd ?? true;
    this.type = new Promise((resolve, reject) => {
      this.settleType = { resolve, reject };
    });
    this.done = new Promise((resolve, reject) => {
      this.settleDone = { resolve, reject };
    });
    // Both are often left unawaited on a failure path; the error still reaches whoever awaits.
    this.type.catch(() => {});
    this.done.catch(() => {});
    this.on("error", () => {});
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(
        new DownloadError({
          code: "too_large",
          message: `Image from ${this.source} is larger than the limit of ${this.maxBytes} bytes`,
          host: this.source,
        }),
      );
      return;
    }
    this.hash.update(chunk);
    this.tail =
      chunk.length >= TAIL_BYTES
        ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES))
        : Buffer.concat([this.tail, chunk]).subarray(-TAIL_BYTES);
    if (this.sniffed) {
      callback(null, chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes < MAGIC_BYTES_NEEDED) {
      callback();
      return;
    }
    const head = Buffer.concat(this.held);
    this.held = [];
    const type = sniffImageType(head);
    if (type === undefined) {
      callback(this.notImage(head));
      return;
    }
    this.sniffed = true;
    this.kind = type.ext;
    this.settleType.resolve(type);
    callback(null, head);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.sniffed) {
      callback(this.notImage(Buffer.concat(this.held)));
      return;
    }
    // A body whose end is the connection closing (no length, not chunked) reads as complete
    // whatever was cut: the image's own end marker says whether it was.
    if (this.checkEnd && !endsWhole(this.kind, this.tail)) {
      callback(
        new DownloadError({
          code: "transient",
          message: `Image from ${this.source} ends without its ${this.kind === "png" ? "PNG IEND chunk" : "JPEG end marker"} after ${this.bytes} bytes: cut short`,
          host: this.source,
        }),
      );
      return;
    }
    this.finishedCleanly = true;
    this.settleDone.resolve({ sha256: this.hash.digest("hex"), bytes: this.bytes });
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.finishedCleanly) {
      const reason = error ?? new Error(`Download from ${this.source} was closed before its end`);
      this.settleType.reject(reason);
      this.settleDone.reject(reason);
    }
    callback(error);
  }

  private notImage(head: Buffer): DownloadError {
    const shown = head
      .subarray(0, MAGIC_BYTES_NEEDED)
      .toString("hex")
      .replace(/(..)(?!$)/g, "$1 ");
    return new DownloadError({
      code: "not_image",
      message: `Body from ${this.source} is not a PNG or JPEG (first bytes: ${shown || "none"})`,
      host: this.source,
    });
  }
}
