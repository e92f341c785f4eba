import type { Readable } from "node:stream";

export interface ArchivePutOptions {
  /** e.g. `image/png`, `application/json; charset=utf-8`. */
  contentType: string;
  /**
   * Object metadata: lower-case ASCII keys, non-empty printable ASCII values, at most 2 KB in
   * all (S3's rules, enforced by every store). Non-ASCII text belongs in the JSON sidecar.
   */
  metadata?: Record<string, string>;
  /** Aborting rejects `put` with the signal's reason and leaves nothing behind. */
  signal?: AbortSignal;
  /**
   * Called once after the put succeeded, with the bytes stored (the metrics' count). Each store
   * counts them its cheapest way: the folder store from the buffer it wrote, or as it streams a
   * large body; S3 as its upload reads the body. Not called when the put fails.
   */
  onStored?: (bytes: number) => void;
}

interface ArchiveCopyOptions {
  /** The copy's content type (the source's bytes, this row's own object). */
  contentType: string;
  /** The copy's own metadata, replacing the source's (same rules as `put`). */
  metadata?: Record<string, string>;
  /**
   * Copy only while the source's ETag is still this one (a HEAD's `etag`), else throw an
   * ArchiveStoreError: S3 sends it as CopySourceIfMatch (s3rver ignores it). The folder store
   * hashes the bytes it copies instead (`sha256` below), which the caller checks.
   */
  ifMatch?: string;
  signal?: AbortSignal;
}

/** What a store learned of a copy's bytes while making it. */
interface ArchiveCopyResult {
  /** Bytes written, where the store saw them (the folder store). */
  bytes?: number;
  /**
   * sha256 (hex) of the bytes written, where the store computed it (the folder store, always) or
   * was told it (S3, when it answers a SHA256 checksum of the copy; s3rver does not).
   */
  sha256?: string;
  /**
   * True, once per store, when the store refused to compute a checksum of a copy (an
   * S3-compatible that rejects ChecksumAlgorithm): the copy went out without asking for one, as
   * every later copy does, so its `sha256` is undefined. For the caller to log.
   */
  checksumRefused?: boolean;
}

interface ArchiveGetOptions {
  /**
   * Aborting ends the read: `get` rejects with the signal's reason, or, once it has returned, the
   * body is destroyed without an error event (a pipeline reading it rejects with a premature close).
   */
  signal?: AbortSignal;
}

/** A stored object being read: its bytes as a stream, and what HTTP needs to serve them. */
interface ArchiveStoreObject {
  /** The bytes; the caller must consume or destroy it. */
  body: Readable;
  /** Bytes stored. */
  size: number;
  /** A validator that changes whenever the bytes do, quoted as an HTTP `ETag` (`"..."`). */
  etag: string;
  /** As given to `put` (`application/octet-stream` when the store does not know it). */
  contentType: string;
}

export interface ArchiveStoreHead {
  /** Bytes stored. */
  size: number;
  /** The metadata given to `put`, exactly. */
  metadata: Record<string, string>;
  /** The object's ETag, quoted, where the store has one (S3): a copy's `ifMatch`. */
  etag?: string;
}

/**
 * Where archived images go: an S3 bucket or a local folder, behind one small interface.
 *
 * Keys are relative `/`-separated paths (`batch/id.png`): no `..`, no leading `/`; a key that
 * breaks the rules throws an ArchiveStoreError `invalid_key`. Failures of the store itself throw
 * ArchiveStoreErrors (`isRetryableStoreError` says whether to try later); if `body` fails, `put`
 * rejects with the body's own error.
 */
export interface ArchiveStore {
  /** Human-readable location of a key, e.g. `s3://bucket/prefix/batch/id.png` or an absolute path. */
  locationOf(key: string): string;
  /**
   * Stores a stream under `key` without holding it whole in memory, replacing any object there.
   * Resolves when it is durable; until then no reader sees a partial object. On any failure
   * `body` is destroyed.
   */
  put(key: string, body: Readable, options: ArchivePutOptions): Promise<void>;
  /**
   * Copies the object at `fromKey` to `toKey` inside the store (S3 CopyObject, a file copy), with
   * `toKey`'s own metadata; atomic like `put`. A missing source throws an ArchiveStoreError `failed`.
   */
  copy(fromKey: string, toKey: string, options: ArchiveCopyOptions): Promise<ArchiveCopyResult>;
  /** The object's bytes as a stream, with its size, ETag and content type; undefined when absent. */
  get(key: string, options?: ArchiveGetOptions): Promise<ArchiveStoreObject | undefined>;
  /** Size and metadata if the object exists, else undefined. */
  head(key: string, signal?: AbortSignal): Promise<ArchiveStoreHead | undefined>;
  /** Deletes the object (and whatever the store keeps beside it); a missing key is not an error. */
  remove(key: string, signal?: AbortSignal): Promise<void>;
  /**
   * Bytes free where the store writes, for this process (a folder store: its file system's space
   * available to unprivileged users); absent or undefined where no such figure exists (S3). The
   * store probe asks it before it lifts a full disk's pause (probe.ts).
   */
  freeBytes?(): Promise<number | undefined>;
  /**
   * Writes `key` (a small object) through the path an object larger than one put takes, where
   * that path differs (S3: a multipart upload of one part, with its request checksums); the
   * store probe writes its object so too, so a store refusing only large objects stays paused.
   * Absent where one path writes everything (a folder).
   */
  putMultipart?(key: string, body: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Releases clients and sockets; the store is unusable afterwards. */
  close(): Promise<void>;
}
