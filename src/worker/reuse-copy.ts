import { createHash } from "node:crypto";
import { archivedImages, imageKeyBase, objectMetadata, sidecarKey } from "../archive/index.js";
import type { ArchiveStore } from "../archive/types.js";
import type { Logger } from "../core/logger.js";
import type { ResultEntry } from "../ledger/index.js";
import type { ArchivedImage, RowRecord } from "../ledger/types.js";

/**
 * The store side of reuse (reuse.ts): a source checked against its index entry, copied to a
 * row's own keys only while it is what was checked, and every copy's bytes checked before the row
 * takes it. A copy is removed when it does not match; a source never is (no copy targets one).
 */

type ReuseStore = Pick<ArchiveStore, "head" | "copy" | "get" | "remove" | "locationOf">;

/** Why an entry was not used (logged; the row is created as usual). */
type Refusal = "object missing" | "object changed" | "checksum mismatch";

/**
 * Each image's HEAD (size, task) and the source sidecar's checksums against the entry; the
 * images' ETags (where the store has them) when they match.
 */
export async function checkSource(
  store: ReuseStore,
  entry: ResultEntry,
  signal: AbortSignal,
): Promise<Refusal | (string | undefined)[]> {
  const key = sidecarKey(entry.batch, entry.rowId);
  const [sidecarHead, ...heads] = await Promise.all([
    store.head(key, signal),
    ...entry.images.map((image) => store.head(image.key, signal)),
  ]);
  const listed = archivedImages(sidecarHead, key, entry.taskId, store);
  for (const [i, image] of entry.images.entries()) {
    const head = heads[i];
    if (!head) return "object missing";
    if (head.size !== image.bytes || head.metadata["task-id"] !== entry.taskId) return "object changed";
    const inSidecar = listed?.find((item) => item.key === image.key);
    if (!inSidecar || inSidecar.sha256 !== image.sha256 || inSidecar.bytes !== image.bytes)
      return "checksum mismatch";
  }
  return heads.map((head) => head?.etag);
}

/** The row's own key of the entry's image `index` (the archive stage's naming). */
export function ownKey(row: Pick<RowRecord, "batch" | "id">, sourceKey: string, index: number): string {
  const ext = sourceKey.slice(sourceKey.lastIndexOf(".") + 1);
  return `${imageKeyBase(row, index)}.${ext}`;
}

interface CopyPlan {
  entry: ResultEntry;
  /** The row's own key of each image. */
  targets: string[];
  /** Each source's ETag at its HEAD: copied only while it still is. */
  etags: (string | undefined)[];
  /** Filled with each key written, as it is. */
  written: string[];
}

/**
 * Copies the entry's images to the row's own keys, each checked against the entry's sha256 (the
 * store's hash of the copy, or the copy read back); on a mismatch every copy made is removed.
 */
export async function copyImages(
  store: ReuseStore,
  plan: CopyPlan,
  job: { signal: AbortSignal; log: Logger },
  row: RowRecord,
): Promise<ArchivedImage[] | Refusal> {
  const { entry, targets, etags, written } = plan;
  const images: ArchivedImage[] = [];
  for (const [index, source] of entry.images.entries()) {
    const key = targets[index]!;
    const etag = etags[index];
    written.push(key);
    const copied = await store.copy(source.key, key, {
      contentType: source.contentType,
      // As the archive stage's, with the row the bytes came from.
      metadata: objectMetadata(row, entry.taskId, { "reused-from": `${entry.batch}/${entry.rowId}` }),
      ...(etag === undefined ? {} : { ifMatch: etag }),
      signal: job.signal,
    });
    if (copied.checksumRefused)
      job.log.warn("the store refused a checksum of a copy: reused copies are read back and hashed instead");
    // No hash from the store (s3rver, some S3-compatibles): the copy is read back and hashed.
    const seen = copied.sha256 === undefined ? await hashOf(store, key, job.signal) : copied;
    if (
      seen === undefined ||
      seen.sha256 !== source.sha256 ||
      (seen.bytes ?? source.bytes) !== source.bytes
    ) {
      await removeAll(store, written, job.signal);
      return "checksum mismatch";
    }
    images.push(imageAt(store, key, source));
  }
  return images;
}

/** The entry is the row itself: its images are already at its keys, read and checked, not copied. */
export async function verifyInPlace(
  store: ReuseStore,
  entry: ResultEntry,
  signal: AbortSignal,
): Promise<ArchivedImage[] | Refusal> {
  const images: ArchivedImage[] = [];
  for (const source of entry.images) {
    const seen = await hashOf(store, source.key, signal);
    if (seen?.sha256 !== source.sha256 || seen.bytes !== source.bytes) return "checksum mismatch";
    images.push(imageAt(store, source.key, source));
  }
  return images;
}

function imageAt(store: ReuseStore, key: string, source: ResultEntry["images"][number]): ArchivedImage {
  return {
    key,
    location: store.locationOf(key),
    bytes: source.bytes,
    sha256: source.sha256,
    contentType: source.contentType,
  };
}

/** The stored object's sha256 and size, read through; undefined when it is gone. */
async function hashOf(
  store: ReuseStore,
  key: string,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number } | undefined> {
  const object = await store.get(key, { signal });
  if (!object) return undefined;
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of object.body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

export async function removeAll(
  store: ReuseStore,
  keys: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  for (const key of keys) await store.remove(key, signal);
}
