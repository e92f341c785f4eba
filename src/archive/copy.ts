import { failpoint, failpointStream } from "../core/failpoints.js";
import { type DownloadImageOptions, downloadImage } from "./download.js";
import { isDownloadError } from "./download-error.js";
import type { ImageContentType } from "./image-type.js";
import { isRetryableStoreError } from "./store-error.js";
import type { ArchiveStore } from "./types.js";

export interface ArchiveFromUrlOptions
  extends Pick<DownloadImageOptions, "maxRedirects" | "timeouts" | "maxBytes" | "dispatcher"> {
  url: string;
  store: Pick<ArchiveStore, "put" | "locationOf">;
  /** Key without extension, e.g. `batch-1/row-7`; `.png` or `.jpg` is appended from the magic bytes. */
  key: string;
  /** See `DownloadImageOptions.allowHosts`. */
  allowHosts: readonly string[];
  /** Object metadata (ASCII only, 2 KB in all). */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface ArchivedImage {
  /** The key written, with its extension. */
  key: string;
  /** `store.locationOf(key)`. */
  location: string;
  sha256: string;
  bytes: number;
  contentType: ImageContentType;
}

/**
 * Streams one image from `url` into `store`: download (host vetting, magic bytes) -> put ->
 * checksum. Errors propagate typed: DownloadError from the download (also one met mid-body),
 * ArchiveStoreError from the store, the signal's reason on abort. If `put` fails the download
 * is destroyed, so no socket is left open.
 */
export async function archiveFromUrl(options: ArchiveFromUrlOptions): Promise<ArchivedImage> {
  const { store, signal } = options;
  const image = await downloadImage({
    url: options.url,
    allowHosts: options.allowHosts,
    signal,
    maxRedirects: options.maxRedirects,
    timeouts: options.timeouts,
    maxBytes: options.maxBytes,
    dispatcher: options.dispatcher,
  });
  const key = `${options.key}.${image.ext}`;
  try {
    await failpoint("archive.during-download");
    await store.put(key, failpointStream("archive.during-upload", image.stream), {
      contentType: image.contentType,
      metadata: options.metadata,
      signal,
    });
  } catch (error) {
    image.stream.destroy();
    throw error;
  }
  const { sha256, bytes } = await image.done;
  return { key, location: store.locationOf(key), sha256, bytes, contentType: image.contentType };
}

/**
 * Whether an error thrown by `archiveFromUrl` may go away if the same call is tried again
 * later: transient downloads and unavailable stores yes. An `expired` DownloadError is not
 * retryable as is: refresh the URL (KIE download-url endpoint) and call again.
 */
export function isRetryableArchiveError(error: unknown): boolean {
  if (isDownloadError(error)) return error.retryable === true;
  return isRetryableStoreError(error);
}
