/**
 * Thumbnails of archived images, made with sharp at one fixed size and kept in a folder of their
 * own on local disk within a byte bound (ThumbIndex). A thumbnail is named by the sha256 of the
 * image it shows (the ledger's checksum), so a hit costs no read of the store, and an image
 * archived again under the same key gets a new one.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import sharp from "sharp";
import { ThumbIndex } from "./thumb-cache.js";

/** Every thumbnail is this size (cropped to fill it), JPEG. */
const THUMB_PX = 256;
/** Decoding stops at this many input pixels: a hostile file cannot eat the dashboard's memory. */
const MAX_INPUT_PIXELS = 64_000_000;
/** Images refused (too large, or did not decode), remembered by sha256 so a view does not read them again. */
const REFUSED_KEPT = 1_000;

export interface ThumbnailerOptions {
  /** The bound on the cache's bytes on disk. @defaultValue 64 MiB */
  maxBytes?: number;
  /** Where the cache folder is made (a fresh one per dashboard, removed on close). @defaultValue os.tmpdir() */
  parentDir?: string;
  /** Images decoded at once (a page asks for 24 thumbnails together). @defaultValue 4 */
  concurrency?: number;
  /** An image larger than this many bytes gets a placeholder, unread. @defaultValue 50 MiB */
  maxInputBytes?: number;
  /** Reading and decoding one image gives up (a placeholder) after this long. @defaultValue 20 s */
  timeoutMs?: number;
}

/** An image to thumbnail, as the store hands it out. */
export interface ThumbSource {
  body: Readable;
  /** Bytes stored (the store's size). */
  size: number;
}

/** At most `size` holders at a time; the others wait in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = Math.max(1, size);
  }

  take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** A placeholder's words on the tile: short and fixed (never the reason's text, which may name paths). */
export type PlaceholderLabel = "no preview" | "too large to preview";

type Thumbnail =
  | { kind: "image"; bytes: Buffer }
  | { kind: "placeholder"; reason: string; label?: PlaceholderLabel };
type Opener = (signal: AbortSignal) => Promise<ThumbSource | undefined>;

export interface Thumbnailer {
  /**
   * The thumbnail of the image whose sha256 is `sha256`; `open` reads the image when it is not
   * cached (the signal aborts when the thumbnail's time is up). An image that cannot be decoded,
   * is too large, takes too long, or that the store fails to hand out gives a placeholder, not an
   * error.
   */
  get(sha256: string, open: (signal: AbortSignal) => Promise<ThumbSource | undefined>): Promise<Thumbnail>;
  close(): Promise<void>;
}

export async function createThumbnailer(options: ThumbnailerOptions = {}): Promise<Thumbnailer> {
  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), "kie-batch-thumbs-"));
  const index = new ThumbIndex(options.maxBytes ?? 64 * 1024 * 1024);
  const pending = new Map<string, Promise<Thumbnail>>();
  const fileOf = (name: string) => join(dir, `${name}.jpg`);
  const slots = new Slots(options.concurrency ?? 4);

  const maxInputBytes = options.maxInputBytes ?? 50 * 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 20_000;
  // Each refused image with why, so a later view gives the same reason (a 60 MiB image is too
  // large, not broken). Insertion-ordered: the oldest is dropped first.
  const refused = new Map<string, { reason: string; label?: PlaceholderLabel }>();
  const remember = (name: string, reason: string, label?: PlaceholderLabel) => {
    refused.set(name, label === undefined ? { reason } : { reason, label });
    if (refused.size > REFUSED_KEPT) refused.delete(refused.keys().next().value!);
  };

  async function make(name: string, open: Opener): Promise<Thumbnail> {
    const known = refused.get(name);
    if (known !== undefined) return { kind: "placeholder", ...known };
    if (index.touch(name)) {
      const cached = await readFile(fileOf(name)).catch(() => undefined);
      if (cached) return { kind: "image", bytes: cached };
      index.forget(name);
    }
    await slots.take();
    try {
      return await resize(name, open);
    } finally {
      slots.give();
    }
  }

  async function resize(name: string, open: Opener): Promise<Thumbnail> {
    const timer = new AbortController();
    const timeout = setTimeout(
      () => timer.abort(new Error(`no thumbnail within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let source: ThumbSource | undefined;
    try {
      source = await open(timer.signal);
    } catch (error) {
      // The store failed (or was too slow): a placeholder now, another try on the next view.
      clearTimeout(timeout);
      return { kind: "placeholder", reason: messageOf(error) };
    }
    if (!source) {
      clearTimeout(timeout);
      return { kind: "placeholder", reason: "not in the store" };
    }
    const { body } = source;
    let bytes: Buffer;
    try {
      if (source.size > maxInputBytes) {
        const reason = tooLarge(source.size, maxInputBytes);
        remember(name, reason, "too large to preview");
        body.destroy();
        return { kind: "placeholder", reason, label: "too large to preview" };
      }
      const transform = sharp({ limitInputPixels: MAX_INPUT_PIXELS, failOn: "error" })
        .resize(THUMB_PX, THUMB_PX, { fit: "cover" })
        .jpeg({ quality: 78 });
      body.on("error", (error) => transform.destroy(error));
      const timedOut = new Promise<never>((_, reject) => {
        const onAbort = () => reject(timer.signal.reason);
        if (timer.signal.aborted) onAbort();
        else timer.signal.addEventListener("abort", onAbort, { once: true });
      });
      bytes = await Promise.race([body.pipe(transform).toBuffer(), timedOut]).catch((error: unknown) => {
        transform.destroy();
        // Slow is not broken: only an image that failed to decode in time is remembered.
        if (!timer.signal.aborted && !body.errored) remember(name, messageOf(error));
        throw error;
      });
    } catch (error) {
      body.destroy();
      return { kind: "placeholder", reason: messageOf(error) };
    } finally {
      clearTimeout(timeout);
    }
    try {
      await writeFile(fileOf(name), bytes);
      for (const old of index.add(name, bytes.length)) await unlink(fileOf(old)).catch(() => {});
    } catch {
      // The cache could not be written (disk full, folder gone): the thumbnail is served anyway.
    }
    return { kind: "image", bytes };
  }

  return {
    get(sha256, open) {
      const name = /^[0-9a-f]{64}$/.test(sha256) ? sha256 : createHash("sha256").update(sha256).digest("hex");
      const running = pending.get(name);
      if (running) return running;
      const made = make(name, open).finally(() => pending.delete(name));
      pending.set(name, made);
      return made;
    },
    async close() {
      await Promise.allSettled(pending.values());
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * What an image without a thumbnail shows instead: a grey square, the size of a thumbnail, with
 * its label (fixed words: nothing to escape).
 */
export function placeholderSvg(label: PlaceholderLabel = "no preview"): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${THUMB_PX}" height="${THUMB_PX}" viewBox="0 0 256 256"><rect width="256" height="256" fill="#eaeef2"/><path d="M88 96h80v64H88z" fill="none" stroke="#8c959f" stroke-width="6"/><path d="M96 152l24-28 18 20 12-12 18 20" fill="none" stroke="#8c959f" stroke-width="6"/><text x="128" y="200" font-family="sans-serif" font-size="16" text-anchor="middle" fill="#57606a">${label}</text></svg>`;
}

/** Why an image over the byte cap has no thumbnail: its size and the cap, in MiB and bytes. */
function tooLarge(size: number, limit: number): string {
  const inBoth = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB (${n} bytes)`;
  return `the image is ${inBoth(size)}, too large to thumbnail: the limit is ${inBoth(limit)}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
