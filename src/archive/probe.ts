import { Readable } from "node:stream";
import { JSON_CONTENT_TYPE } from "./sidecar.js";
import { ArchiveStoreError, isArchiveStoreError } from "./store-error.js";
import type { ArchiveStore } from "./types.js";

/** The probe's object, at the store's root: no batch can own it (batch names never start with "."). */
const STORE_PROBE_KEY = ".kie-batch-probe.json";

/**
 * Does the store take an archive again? Writes a small object, reads its head back (the archive
 * stage heads every sidecar first), when asked (`multipart`) writes it again the way a large image
 * is written where that differs (S3: a multipart upload, `putMultipart`: only its checksums'
 * refusal counts there), then deletes it. Throws what the store threw. The delete is best effort: a bucket policy that allows PutObject but not DeleteObject archives fine, so it
 * must not keep archiving paused; `onRemoveError` hears of it.
 */
export async function probeStore(
  store: Pick<ArchiveStore, "put" | "head" | "remove" | "freeBytes" | "putMultipart">,
  options: {
    signal?: AbortSignal;
    now?: number;
    onRemoveError?: (error: unknown) => void;
    /**
     * Write the object through a multipart upload too, where the store has one (`putMultipart`):
     * the probe of a pause for a refusal of the SDK's checksums.
     */
    multipart?: boolean;
    /** The multipart write failed otherwise than by refusing its checksums: the probe passes. */
    onMultipartError?: (error: unknown) => void;
    /** KIE_ARCHIVE_MIN_FREE: the store's free bytes (where it says) the probe asks for. */
    minFreeBytes?: number;
  } = {},
): Promise<void> {
  const { signal } = options;
  await checkFreeSpace(store, options.minFreeBytes ?? 0);
  const body = `${JSON.stringify({ probe: "kie-batch", at: new Date(options.now ?? Date.now()).toISOString() })}\n`;
  await store.put(STORE_PROBE_KEY, Readable.from([Buffer.from(body)]), {
    contentType: JSON_CONTENT_TYPE,
    ...(signal ? { signal } : {}),
  });
  await store.head(STORE_PROBE_KEY, signal);
  if (options.multipart && store.putMultipart) {
    try {
      await store.putMultipart(STORE_PROBE_KEY, Buffer.from(body), signal);
    } catch (error) {
      // Only a refusal of its checksums holds the pause (every large image would meet it); a
      // store without multipart at all (its images all small enough for one put) must resume.
      if (signal?.aborted || (isArchiveStoreError(error) && error.code === "checksum_refused")) throw error;
      options.onMultipartError?.(error);
    }
  }
  await store.remove(STORE_PROBE_KEY, signal).catch((error: unknown) => options.onRemoveError?.(error));
}

/**
 * A full disk is not over when a probe's few bytes fit: the image that filled it gave its space
 * back as it failed, so a write of 100 bytes succeeds while the next image would not, and archiving
 * would resume and pause again every probe interval (an alert each time, every image downloaded
 * again). So the probe asks the store's free space first, where the store knows it: under
 * `minFree`, it refuses as a full disk does. Only the probe asks (not each put): archiving goes on
 * to the last byte, then waits until that much is free again.
 */
async function checkFreeSpace(store: Pick<ArchiveStore, "freeBytes">, minFree: number): Promise<void> {
  if (minFree <= 0 || store.freeBytes === undefined) return;
  const free = await store.freeBytes();
  if (free === undefined || free >= minFree) return;
  throw new ArchiveStoreError({
    code: "no_space",
    message: `${mebibytes(free)} free where the archive writes, under the ${mebibytes(minFree)} archiving waits for after a full disk (KIE_ARCHIVE_MIN_FREE)`,
  });
}

/** Bytes as MiB with one decimal, for messages. */
export const mebibytes = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MiB`;
