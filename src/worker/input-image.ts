/**
 * A row's local input image (image-to-image, edit) becomes a URL KIE can fetch: uploaded through
 * KIE's File Upload API once per distinct file (by sha256) for the whole fleet, recorded with
 * its time (in Redis, `UploadRecords`, and in each worker's memory), and uploaded again when it
 * may expire before the create it is for.
 *
 * Uploads go with one of the worker's API keys (they are free and their URLs public, so any key's
 * upload serves every key's create): the first whose gate lets uploads go (input-image-step.ts),
 * and an upload's error acts on that key's gate (a 401 pauses it, and the next row uploads with
 * another key).
 *
 * Money: nothing here creates or costs a task (uploads are free). It runs before the key choice,
 * so before any in-flight or rate slot: an upload (up to 10 MiB) holds neither, nor does a failed
 * one; the row keeps the reservation it made for this attempt, and a terminal failure gives it
 * back (handleSubmitError).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Clock } from "../core/clock.js";
import { isKieError, KieError } from "../kie/errors.js";
import type { FileUploader } from "../kie/upload.js";
import { sniffImageType } from "../manifest/image-file.js";
import type { InputImagePort } from "./ports.js";

/** KIE's docs say uploads live 3 days in one place and 24 hours in another: plan on 24 hours. */
export const UPLOAD_LIFETIME_MS = 24 * 3_600_000;
/**
 * An upload that expires sooner than this is made again: it must outlive the wait for a rate
 * slot and KIE's own queue until the service fetches it.
 */
export const UPLOAD_RENEW_MARGIN_MS = 2 * 3_600_000;

/** A fleet's record of its uploads, by sha256 (Redis in production): one upload serves every worker. */
export interface UploadRecords {
  get(sha256: string): Promise<UploadRecord | undefined>;
  /** Kept for `ttlMs`, then forgotten (the upload is gone by then anyway). */
  put(sha256: string, record: UploadRecord, ttlMs: number): Promise<void>;
  /** Forgets an upload KIE no longer serves (it expired early): the next row uploads again. */
  delete(sha256: string): Promise<void>;
}

export interface UploadRecord {
  downloadUrl: string;
  /** Epoch ms when the upload was sent. */
  uploadedAt: number;
}

export interface InputImagesOptions {
  /** The upload client of the worker's first key (lane 0). */
  uploader: FileUploader;
  /** Each further key's upload client, by lane (`uploaders[i]` for lane i; lane 0 may be omitted). */
  uploaders?: readonly FileUploader[];
  /** Shared with the other workers. @defaultValue this process's memory only */
  records?: UploadRecords;
  clock: Pick<Clock, "now">;
  /** @defaultValue UPLOAD_LIFETIME_MS */
  lifetimeMs?: number;
  /** @defaultValue UPLOAD_RENEW_MARGIN_MS */
  renewMarginMs?: number;
}

/** True while an upload made at `uploadedAt` will still be there `marginMs` from `now`. */
export function uploadStillUsable(
  uploadedAt: number,
  now: number,
  lifetimeMs: number,
  marginMs: number,
): boolean {
  return now + marginMs < uploadedAt + lifetimeMs;
}

/** One upload (or look at the fleet's record) shared by the rows of one file that wait for it. */
interface SharedUpload {
  promise: Promise<string>;
  /** The path whose bytes it reads: a row naming another copy re-checks its own on a file problem. */
  path: string;
  /** Aborted only when every row waiting for it has given up (not by the first one's shutdown). */
  controller: AbortController;
  waiting: number;
}

/** The uploads of one worker process, by the sha256 of the file's bytes. */
export class InputImages implements InputImagePort {
  private readonly uploads = new Map<string, UploadRecord>();
  private readonly inFlight = new Map<string, SharedUpload>();

  constructor(private readonly options: InputImagesOptions) {}

  /**
   * A fetchable URL for the file at `path`, whose bytes must still hash to `sha256`, uploaded (when
   * it must be) with the key of `lane` (its index in the worker's keys). Throws KieError.
   */
  async urlFor(path: string, sha256: string, signal?: AbortSignal, lane = 0): Promise<string> {
    const { clock, lifetimeMs = UPLOAD_LIFETIME_MS, renewMarginMs = UPLOAD_RENEW_MARGIN_MS } = this.options;
    const usable = (record: UploadRecord | undefined) =>
      record !== undefined && uploadStillUsable(record.uploadedAt, clock.now(), lifetimeMs, renewMarginMs);
    const known = this.uploads.get(sha256);
    if (usable(known)) return known!.downloadUrl;
    // Rows sharing one image wait for one upload (or one look at the fleet's record), not one each;
    // per key, so an upload's error always belongs to the key the waiting row chose.
    const uploader = this.uploaderOf(lane);
    const slot = `${lane}:${sha256}`;
    const current = this.inFlight.get(slot);
    const shared =
      current && !current.controller.signal.aborted
        ? current
        : this.share(path, sha256, slot, uploader, usable);
    try {
      return await this.waitFor(shared, signal);
    } catch (error) {
      // Another copy of the same bytes was missing or changed: that says nothing of this one.
      if (shared.path !== path && isFileProblem(error))
        return this.waitFor(this.share(path, sha256, slot, uploader, usable), signal);
      throw error;
    }
  }

  /** Forgets the upload of `sha256`, here and for the fleet: KIE no longer serves it (expired early). */
  async forget(sha256: string): Promise<void> {
    this.uploads.delete(sha256);
    await this.options.records?.delete(sha256);
  }

  /**
   * The upload client of a lane (lane 0: the first key's). A lane with none is a wiring mistake:
   * refused, never sent with another key's client (its errors would pause the wrong key).
   */
  private uploaderOf(lane: number): FileUploader {
    if (lane === 0) return this.options.uploaders?.[0] ?? this.options.uploader;
    const uploader = this.options.uploaders?.[lane];
    if (!uploader) throw new RangeError(`no upload client for key lane ${lane}`);
    return uploader;
  }

  private share(
    path: string,
    sha256: string,
    slot: string,
    uploader: FileUploader,
    usable: (record: UploadRecord | undefined) => boolean,
  ) {
    const controller = new AbortController();
    const shared: SharedUpload = {
      path,
      controller,
      waiting: 0,
      promise: this.fleetUrl(path, sha256, uploader, usable, controller.signal).finally(() => {
        if (this.inFlight.get(slot) === shared) this.inFlight.delete(slot);
      }),
    };
    // A rejection nobody waits for any more (every row gave up) is not an unhandled one.
    shared.promise.catch(() => undefined);
    this.inFlight.set(slot, shared);
    return shared;
  }

  /** The shared upload's answer, or this caller's abort: the upload goes on for the others. */
  private async waitFor(shared: SharedUpload, signal: AbortSignal | undefined): Promise<string> {
    if (!signal) return shared.promise;
    signal.throwIfAborted();
    shared.waiting++;
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        if (--shared.waiting === 0) shared.controller.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([shared.promise, aborted]);
    } finally {
      if (!signal.aborted) shared.waiting--;
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Another worker's upload when it is still usable, else a new one, recorded for the fleet. */
  private async fleetUrl(
    path: string,
    sha256: string,
    uploader: FileUploader,
    usable: (record: UploadRecord | undefined) => boolean,
    signal: AbortSignal,
  ): Promise<string> {
    const { records, clock, lifetimeMs = UPLOAD_LIFETIME_MS } = this.options;
    const shared = await records?.get(sha256);
    if (usable(shared)) {
      this.uploads.set(sha256, shared!);
      return shared!.downloadUrl;
    }
    const record = await this.upload(path, sha256, uploader, signal);
    await records?.put(sha256, record, Math.max(1, record.uploadedAt + lifetimeMs - clock.now()));
    return record.downloadUrl;
  }

  private async upload(
    path: string,
    sha256: string,
    uploader: FileUploader,
    signal: AbortSignal,
  ): Promise<UploadRecord> {
    const bytes = await readImage(path);
    const found = createHash("sha256").update(bytes).digest("hex");
    if (found !== sha256) {
      throw inputError(
        false,
        `input image ${path} changed since the row was enqueued (sha256 ${sha256.slice(0, 12)}..., now ${found.slice(0, 12)}...): enqueue the manifest again for the new image`,
      );
    }
    const { mimeType, extension } = imageTypeOf(path, bytes);
    const uploadedAt = this.options.clock.now();
    const { downloadUrl } = await uploader.upload(
      { bytes, fileName: `${sha256.slice(0, 32)}${extension}`, mimeType },
      signal,
    );
    const record = { downloadUrl, uploadedAt };
    this.uploads.set(sha256, record);
    return record;
  }
}

async function readImage(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    // A missing file may be a mount that comes back: retried until the attempts run out.
    const code = (error as { code?: unknown } | null)?.code;
    throw inputError(
      true,
      `input image ${path} cannot be read (${typeof code === "string" ? code : "error"})`,
    );
  }
}

const INPUT_IMAGE = "input image";

export function inputError(retryable: boolean, message: string): KieError {
  return new KieError({ code: "validation", retryable, endpoint: INPUT_IMAGE, message });
}

/** The local file was missing or its bytes changed (not the upload service's answer). */
function isFileProblem(error: unknown): boolean {
  return isKieError(error) && error.endpoint === INPUT_IMAGE;
}

const EXTENSIONS: Readonly<Record<string, string>> = {
  "image/png": ".png",
  "image/jpeg": ".jpg",
  "image/webp": ".webp",
};

/** The upload's type and name ending, from the same sniffer that checked the file at enqueue. */
function imageTypeOf(path: string, bytes: Buffer): { mimeType: string; extension: string } {
  const mimeType = sniffImageType(bytes);
  const extension = mimeType === undefined ? undefined : EXTENSIONS[mimeType];
  if (mimeType === undefined || extension === undefined) {
    throw inputError(false, `input image ${path} is not a PNG, JPEG or WebP image`);
  }
  return { mimeType, extension };
}
