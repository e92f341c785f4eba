/**
 * A row's local input image (image-to-image, edit) becomes a URL KIE can fetch: uploaded through
 * KIE's File Upload API once per distinct file (by sha256) per worker process, remembered with
 * its expiry, and uploaded again when it may expire before the create it is for.
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
import type { StageJob, StageResult } from "./stage.js";
import { handleSubmitError, type SubmitErrorDeps } from "./submit-errors.js";

/** KIE's docs say uploads live 3 days in one place and 24 hours in another: plan on 24 hours. */
export const UPLOAD_LIFETIME_MS = 24 * 3_600_000;
/**
 * An upload that expires sooner than this is made again: it must outlive the wait for a rate
 * slot and KIE's own queue until the service fetches it.
 */
export const UPLOAD_RENEW_MARGIN_MS = 2 * 3_600_000;

export interface InputImagesOptions {
  uploader: FileUploader;
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
export class InputImages {
  private readonly uploads = new Map<string, { downloadUrl: string; uploadedAt: number }>();
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(private readonly options: InputImagesOptions) {}

  /** A fetchable URL for the file at `path`, whose bytes must still hash to `sha256`. Throws KieError. */
  async urlFor(path: string, sha256: string, signal?: AbortSignal): Promise<string> {
    const { clock, lifetimeMs = UPLOAD_LIFETIME_MS, renewMarginMs = UPLOAD_RENEW_MARGIN_MS } = this.options;
    const known = this.uploads.get(sha256);
    if (known && uploadStillUsable(known.uploadedAt, clock.now(), lifetimeMs, renewMarginMs)) {
      return known.downloadUrl;
    }
    // Rows sharing one image wait for one upload, not one each.
    let pending = this.inFlight.get(sha256);
    if (!pending) {
      pending = this.upload(path, sha256, signal).finally(() => this.inFlight.delete(sha256));
      this.inFlight.set(sha256, pending);
    }
    return pending;
  }

  private async upload(path: string, sha256: string, signal?: AbortSignal): Promise<string> {
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
    this.uploads.set(sha256, { downloadUrl, uploadedAt });
    return downloadUrl;
  }
}

/**
 * The input image URL for a row's create, or what the submit stage does instead: a fleet-wide
 * condition ("again"), a retry, or the row failed for good. Rows without a local image pass.
 */
export async function prepareInputImage(
  params: GenerationParams,
  job: StageJob<SubmitJob>,
  deps: SubmitErrorDeps & { inputImages?: InputImages | undefined },
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
