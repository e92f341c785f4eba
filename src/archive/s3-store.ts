import { pipeline, type Readable } from "node:stream";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { destroyOnAbort } from "./abort-body.js";
import { byteCounter } from "./count-bytes.js";
import { assertValidKey } from "./keys.js";
import { assertValidMetadata } from "./metadata.js";
import { refusesChecksum, toStoreError } from "./s3-errors.js";
import { putOnePartUpload } from "./s3-multipart-probe.js";
import { httpStatusOf } from "./store-error.js";
import type { ArchiveStore } from "./types.js";

export interface S3StoreOptions {
  bucket: string;
  /** Prepended to every key as is, e.g. `images/`. @defaultValue "" */
  prefix?: string;
  /** An S3-compatible endpoint (MinIO, s3rver); AWS's own when undefined. */
  endpoint?: string;
  region: string;
  /** Path-style URLs, as MinIO and s3rver need. @defaultValue false */
  forcePathStyle?: boolean;
  /** Static credentials; the SDK's default provider chain when undefined. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Use this client instead of building one from the options above; `close()` then leaves it open. */
  client?: S3Client;
  /** Multipart part size; a body up to this size is sent with one PutObject. @defaultValue 8 MiB */
  partSize?: number;
  /** Parts in flight at once; memory is bounded by about (queueSize + 1) x partSize. @defaultValue 4 */
  queueSize?: number;
  /**
   * A request whose socket carries nothing for this long fails (retryable, as the store being
   * away): an endpoint that takes a request and never answers would otherwise hold the archive
   * slot, and the row in `archiving`, until the worker restarts. @defaultValue 60000
   */
  idleTimeoutMs?: number;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_QUEUE_SIZE = 4;

/**
 * An ArchiveStore on S3 (or anything speaking it) using lib-storage's Upload, which stores exact
 * bytes also against s3rver (a plain PutObject with a stream body does not: DESIGN.md). Keys are
 * `${prefix}${key}`. Metadata is checked against S3's real rules before anything is sent.
 */
export function createS3Store(options: S3StoreOptions): ArchiveStore {
  const { bucket } = options;
  const prefix = options.prefix ?? "";
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
  const client =
    options.client ??
    new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: options.credentials,
      // Without them a black-holed endpoint hangs a put until the OS gives up, and one that
      // accepts and never answers hangs it for good (the SDK has no default for either).
      requestHandler: { connectionTimeout: 10_000, socketTimeout: options.idleTimeoutMs ?? 60_000 },
    });
  const ownsClient = options.client === undefined;
  // An S3-compatible behind S3_ENDPOINT: a checksum refusal there is its setting (see toStoreError).
  const thirdParty = options.endpoint !== undefined;
  // Cleared for good the first time the store refuses ChecksumAlgorithm on a copy (see copy).
  let checksumOnCopy = true;

  const objectKey = (key: string): string => {
    assertValidKey(key);
    return `${prefix}${key}`;
  };
  const locationOf = (key: string): string => `s3://${bucket}/${objectKey(key)}`;

  return {
    locationOf,

    async put(key, body, putOptions) {
      const { signal } = putOptions;
      let Key: string;
      const metadata = putOptions.metadata ?? {};
      try {
        Key = objectKey(key);
        assertValidMetadata(metadata);
        signal?.throwIfAborted();
      } catch (error) {
        body.destroy();
        throw error;
      }

      const abortController = new AbortController();
      const onAbort = () => abortController.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      // Counted as the upload reads it, when asked: the body's own error reaches the upload
      // through the pipeline, and destroying the body (below) destroys the counter too.
      const counter = putOptions.onStored ? byteCounter() : undefined;
      const source = counter ? pipeline(body, counter.through, () => {}) : body;
      const upload = new Upload({
        client,
        params: {
          Bucket: bucket,
          Key,
          Body: source,
          ContentType: putOptions.contentType,
          Metadata: metadata,
        },
        partSize,
        queueSize,
        leavePartsOnError: false,
        abortController,
      });
      try {
        await upload.done();
        if (counter) putOptions.onStored?.(counter.bytes());
      } catch (error) {
        // The body's own failure (a download cut short) is the cause worth reporting.
        const bodyError = body.errored;
        body.destroy();
        if (signal?.aborted) throw signal.reason;
        if (bodyError) throw bodyError;
        throw toStoreError(error, "put", `s3://${bucket}/${Key}`, thirdParty);
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },

    async copy(fromKey, toKey, copyOptions) {
      const { signal } = copyOptions;
      const Key = objectKey(toKey);
      const source = objectKey(fromKey);
      const metadata = copyOptions.metadata ?? {};
      assertValidMetadata(metadata);
      // Server-side: the bytes never pass through the worker. Asking for a SHA256 checksum
      // makes real S3 compute one over the copy, which the caller checks; s3rver answers none.
      // CopySourceIfMatch: a source rewritten since the caller's HEAD is not copied (412).
      const send = (withChecksum: boolean) =>
        client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key,
            CopySource: `${bucket}/${encodeURIComponent(source).replace(/%2F/g, "/")}`,
            MetadataDirective: "REPLACE",
            Metadata: metadata,
            ContentType: copyOptions.contentType,
            ...(copyOptions.ifMatch === undefined ? {} : { CopySourceIfMatch: copyOptions.ifMatch }),
            ...(withChecksum ? { ChecksumAlgorithm: "SHA256" as const } : {}),
          }),
          { abortSignal: signal },
        );
      try {
        let answer: Awaited<ReturnType<typeof send>>;
        let refused = false;
        try {
          answer = await send(checksumOnCopy);
        } catch (error) {
          // Some S3-compatibles reject the checksum header (400 InvalidArgument, 501
          // NotImplemented): sent once more without it, and if that goes through, never again.
          if (!checksumOnCopy || signal?.aborted || !refusesChecksum(error)) throw error;
          answer = await send(false);
          refused = checksumOnCopy;
          checksumOnCopy = false;
        }
        const checksum = answer.CopyObjectResult?.ChecksumSHA256;
        // A composite checksum (`...-N`, of a multipart object's parts) is not the bytes' sha256.
        return {
          ...(checksum && !checksum.includes("-")
            ? { sha256: Buffer.from(checksum, "base64").toString("hex") }
            : {}),
          ...(refused ? { checksumRefused: true } : {}),
        };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw toStoreError(error, "copy", `s3://${bucket}/${source} -> ${Key}`, thirdParty);
      }
    },

    async get(key, getOptions = {}) {
      const { signal } = getOptions;
      const Key = objectKey(key);
      // The SDK's abort is tied to the request only while it is in flight: tied to the caller's
      // signal for good, an abort after `get` returned would destroy the body with an error
      // before the caller listens on it. After that the body ends without one (destroyOnAbort).
      const inFlight = new AbortController();
      const onAbort = () => inFlight.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        signal?.throwIfAborted();
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key }), {
          abortSignal: inFlight.signal,
        });
        // In Node the SDK's body is the HTTP response itself: streamed, never buffered whole.
        const body = answer.Body as Readable | undefined;
        if (!body) return undefined;
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) {
          body.destroy();
          throw signal.reason;
        }
        return {
          body: destroyOnAbort(body, signal),
          size: answer.ContentLength ?? 0,
          etag: answer.ETag ?? `"${answer.LastModified?.getTime().toString(16) ?? "0"}"`,
          contentType: answer.ContentType ?? "application/octet-stream",
        };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if ((error as { name?: unknown }).name === "NoSuchKey" || httpStatusOf(error) === 404)
          return undefined;
        throw toStoreError(error, "get", `s3://${bucket}/${Key}`, thirdParty);
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },

    async head(key, signal) {
      const Key = objectKey(key);
      try {
        const answer = await client.send(new HeadObjectCommand({ Bucket: bucket, Key }), {
          abortSignal: signal,
        });
        return {
          size: answer.ContentLength ?? 0,
          metadata: answer.Metadata ?? {},
          ...(answer.ETag ? { etag: answer.ETag } : {}),
        };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        // HEAD has no body, so a missing bucket also comes back as a bare 404 "NotFound".
        if ((error as { name?: unknown }).name === "NotFound" || httpStatusOf(error) === 404)
          return undefined;
        throw toStoreError(error, "head", `s3://${bucket}/${Key}`, thirdParty);
      }
    },

    async remove(key, signal) {
      const Key = objectKey(key);
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }), { abortSignal: signal });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw toStoreError(error, "delete", `s3://${bucket}/${Key}`, thirdParty);
      }
    },

    async putMultipart(key, body, signal) {
      const Key = objectKey(key);
      try {
        await putOnePartUpload(client, bucket, Key, body, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw toStoreError(error, "put", `s3://${bucket}/${Key} (multipart)`, thirdParty);
      }
    },

    async close() {
      if (ownsClient) client.destroy();
    },
  };
}
