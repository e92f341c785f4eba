/**
 * A row's local input image (image-to-image, edit) becomes a URL KIE can fetch: uploaded through
 * KIE's File Upload API once per distinct file (by sha256) for the whole fleet, recorded with
 * its time (in Redis, `UploadRecords`, and in each worker's memory), and uploaded again when it
 * may expire before the create it is for.
 *
 * Money: nothing here creates or costs a task (uploads are free). It runs before the in-flight
 * slot and the rate slot are taken, so a failed upload holds neither; the row keeps the
 * reservation it made for this attempt, and a terminal failure gives it back (handleSubmitError).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Clock } from "../core/clock.js";
import { isKieError, KieError } from "../kie/errors.js";
import type { GenerationParams } from "../kie/types.js";
import type { FileUploader } from "../kie/upload.js";
import type { SubmitJob } from "./jobs.js";
import type { InputImagePort } from "./ports.js";
import type { StageJob, StageResult } from "./stage.js";
import { handleSubmitError, type SubmitErrorDeps } from "./submit-errors.js";

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
}

export interface UploadRecord {
  downloadUrl: string;
  /** Epoch ms when the upload was sent. */
  uploadedAt: number;
}

export interface InputImagesOptions {
  uploader: FileUploader;
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

/** The uploads of one worker process, by the sha256 of the file's bytes. */
export class InputImages implements InputImagePort {
  private readonly uploads = new Map<string, UploadRecord>();
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(private readonly options: InputImagesOptions) {}

  /** A fetchable URL for the file at `path`, whose bytes must still hash to `sha256`. Throws KieError. */
  async urlFor(path: string, sha256: string, signal?: AbortSignal): Promise<string> {
    const { clock, lifetimeMs = UPLOAD_LIFETIME_MS, renewMarginMs = UPLOAD_RENEW_MARGIN_MS } = this.options;
    const usable = (record: UploadRecord | undefined) =>
      record !== undefined && uploadStillUsable(record.uploadedAt, clock.now(), lifetimeMs, renewMarginMs);
    const known = this.uploads.get(sha256);
    if (usable(known)) return known!.downloadUrl;
    // Rows sharing one image wait for one upload (or one look at the fleet's record), not one each.
    let pending = this.inFlight.get(sha256);
    if (!pending) {
      pending = this.fleetUrl(path, sha256, usable, signal).finally(() => this.inFlight.delete(sha256));
      this.inFlight.set(sha256, pending);
    }
    return pending;
  }

  /** Another worker's upload when it is still usable, else a new one, recorded for the fleet. */
  private async fleetUrl(
    path: string,
    sha256: string,
    usable: (record: UploadRecord | undefined) => boolean,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const { records, clock, lifetimeMs = UPLOAD_LIFETIME_MS } = this.options;
    const shared = await records?.get(sha256);
    if (usable(shared)) {
      this.uploads.set(sha256, shared!);
      return shared!.downloadUrl;
    }
    const record = await this.upload(path, sha256, signal);
    await records?.put(sha256, record, Math.max(1, record.uploadedAt + lifetimeMs - clock.now()));
    return record.downloadUrl;
  }

  private async upload(path: string, sha256: string, signal?: AbortSignal): Promise<UploadRecord> {
    const bytes = await readImage(path);
    const found = createHash("sha256").update(bytes).digest("hex");
    if (found !== sha256) {
      throw inputError(
        false,
        `input image ${path} changed since the row was enqueued (sha256 ${sha256.slice(0, 12)}..., now ${found.slice(0, 12)}...): enqueue the manifest again for the new image`,
      );
    }
    const uploadedAt = this.options.clock.now();
    const { downloadUrl } = await this.options.uploader.upload(
      { bytes, fileName: `${sha256.slice(0, 32)}${extensionOf(bytes)}`, mimeType: mimeOf(bytes) },
      signal,
    );
    const record = { downloadUrl, uploadedAt };
    this.uploads.set(sha256, record);
    return record;
  }
}

/**
 * The input image URL for a row's create, or what the submit stage does instead: a fleet-wide
 * condition ("again"), a retry, or the row failed for good. Rows without a local image pass.
 */
export async function prepareInputImage(
  params: GenerationParams,
  job: StageJob<SubmitJob>,
  deps: SubmitErrorDeps & { inputImages?: InputImagePort | undefined },
): Promise<{ imageUrl?: string; next?: "again" | StageResult<SubmitJob> }> {
  const { image_path: path, image_sha256: sha256 } = params;
  if (path === undefined || sha256 === undefined) return {};
  try {
    if (!deps.inputImages) {
      throw inputError(
        false,
        "this worker has no upload client for local input images (KIE_UPLOAD_BASE_URL)",
      );
    }
    return { imageUrl: await deps.inputImages.urlFor(path, sha256, job.signal) };
  } catch (error) {
    if (job.signal?.aborted || !isKieError(error)) throw error;
    job.log.warn({ code: error.code, path }, `input image not uploaded: ${error.message}`);
    return { next: await handleSubmitError(error, job, deps) };
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

function inputError(retryable: boolean, message: string): KieError {
  return new KieError({ code: "validation", retryable, endpoint: "input image", message });
}

function mimeOf(bytes: Buffer): string {
  if (bytes[0] === 0x89) return "image/png";
  if (bytes[0] === 0xff) return "image/jpeg";
  return "image/webp";
}

function extensionOf(bytes: Buffer): string {
  return { "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp" }[mimeOf(bytes)]!;
}
