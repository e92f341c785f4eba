import { constants } from "node:os";
import { CodedError, isCodedError } from "../core/errors.js";
/**
 * Errors of an ArchiveStore, and the one predicate the archive stage asks: "try again later?".
 * Classification is by `code`, so it survives serialisation into Redis.
 */

export type ArchiveStoreErrorCode =
  /** The key is empty, absolute, escapes the root or names a reserved file. */
  | "invalid_key"
  /** Metadata that S3 would refuse: non-ASCII, over 2 KB, or a bad key. */
  | "invalid_metadata"
  /** 401/403, bad credentials, EACCES/EPERM/EROFS: an operator must act. */
  | "access_denied"
  /** The bucket does not exist. */
  | "no_such_bucket"
  /** 5xx, throttling, network errors, timeouts, a failing disk: retry with backoff. */
  | "unavailable"
  /**
   * The disk or quota is full (ENOSPC, EDQUOT; MinIO's 507 XMinioStorageFull): a later try may
   * succeed, but only once an operator frees space, and every row would meet it alike.
   */
  | "no_space"
  /**
   * The store refuses the AWS SDK's request checksums (XAmzContentSHA256Mismatch; an
   * InvalidArgument or NotImplemented naming `x-amz-checksum-*`, `x-amz-trailer` or aws-chunked):
   * an S3-compatible that needs AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED. Every put meets
   * it until an operator sets that; once in a while, bytes damaged on the way: a probe passes.
   */
  | "checksum_refused"
  /** Anything else: not retried. */
  | "failed";

export interface ArchiveStoreErrorOptions {
  code: ArchiveStoreErrorCode;
  message: string;
  /** Where the store was writing or reading, e.g. `s3://bucket/key` or a path. */
  location?: string;
  httpStatus?: number;
  cause?: unknown;
}

export class ArchiveStoreError extends CodedError<ArchiveStoreErrorCode> {
  override readonly name = "ArchiveStoreError";
  readonly location: string | undefined;
  readonly httpStatus: number | undefined;

  constructor(options: ArchiveStoreErrorOptions) {
    super(options.code, options.message, { retryable: retryableCode(options.code), cause: options.cause });
    this.location = options.location;
    this.httpStatus = options.httpStatus;
  }

  protected override details() {
    return { location: this.location, httpStatus: this.httpStatus };
  }
}

/** True for an ArchiveStoreError, also one that crossed a serialisation boundary. */
export function isArchiveStoreError(error: unknown): error is ArchiveStoreError {
  return isCodedError(error, ArchiveStoreError, "ArchiveStoreError");
}

/** S3 error names (the `Code` of the XML body) that mean "busy or broken for now". */
const RETRYABLE_S3_NAMES: ReadonlySet<string> = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "RequestLimitExceeded",
  "TooManyRequestsException",
  "BandwidthLimitExceeded",
  "PriorRequestNotComplete",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
  // Bytes damaged or cut short on the way (a checksum or length that does not match), and a
  // multipart upload the server lost (a MinIO restart): a put from the start again may well pass.
  "BadDigest",
  "IncompleteBody",
  "NoSuchUpload",
  "InvalidPart",
]);

const ACCESS_DENIED_S3_NAMES: ReadonlySet<string> = new Set([
  "AccessDenied",
  "AllAccessDisabled",
  "AccountProblem",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
]);

/** Node network and file-system error codes that a later attempt may not meet. */
const RETRYABLE_SYSTEM_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "EIO",
  "EMFILE",
  "ENFILE",
  "EBUSY",
  "EAGAIN",
  // An NFS handle gone stale (the file removed on the server, a server restart): opened anew later.
  "ESTALE",
]);

const ACCESS_DENIED_SYSTEM_CODES: ReadonlySet<string> = new Set(["EACCES", "EPERM", "EROFS"]);

/** A full disk or quota: file-system codes, and the S3 error names and status that say it. */
const NO_SPACE_SYSTEM_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT"]);
/**
 * libuv has no name for EDQUOT: Node reports an exceeded quota as code `UNKNOWN` (sync calls, the
 * file threads) or `Unknown system error -122` (async ones), with only the errno to tell.
 */
const EDQUOT_ERRNO = constants.errno.EDQUOT === undefined ? undefined : -constants.errno.EDQUOT;
const NO_SPACE_S3_NAMES: ReadonlySet<string> = new Set(["XMinioStorageFull"]);
/** The words of a full disk in an S3 error's message (MinIO's 500 "... no space left on device"). */
const NO_SPACE_MESSAGE = /no space left on device/i;
/** HTTP 507 Insufficient Storage (MinIO's full drives). */
const INSUFFICIENT_STORAGE = 507;
/** What an S3-compatible that does not take the SDK's flexible checksums says, in a 400 or 501. */
const CHECKSUM_REFUSAL_NAMES: ReadonlySet<string> = new Set([
  "InvalidArgument",
  "NotImplemented",
  "InvalidRequest",
]);
const CHECKSUM_REFUSAL_MESSAGE =
  /checksum|x-amz-trailer|aws-chunked|STREAMING-UNSIGNED-PAYLOAD-TRAILER|x-amz-decoded-content-length/i;

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  errno?: unknown;
  message?: unknown;
  Code?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  cause?: unknown;
}

/** The HTTP status an AWS SDK error carries, if any. */
export function httpStatusOf(error: unknown): number | undefined {
  const status = (error as ErrorLike | null)?.$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/**
 * Maps any error met while talking to a store (an AWS SDK error, a Node system error, or an
 * ArchiveStoreError) to a code. Pure; looks at `name`, `Code`, `code`, the HTTP status and
 * one level of `cause`.
 */
export function classifyStoreError(error: unknown): ArchiveStoreErrorCode {
  if (isArchiveStoreError(error)) return error.code;
  if (typeof error !== "object" || error === null) return "failed";
  const e = error as ErrorLike;
  const name = typeof e.Code === "string" ? e.Code : typeof e.name === "string" ? e.name : "";
  const status = httpStatusOf(error);
  if (name === "NoSuchBucket") return "no_such_bucket";
  if (
    name === "XAmzContentSHA256Mismatch" ||
    (CHECKSUM_REFUSAL_NAMES.has(name) &&
      CHECKSUM_REFUSAL_MESSAGE.test(typeof e.message === "string" ? e.message : ""))
  )
    return "checksum_refused";
  if (ACCESS_DENIED_S3_NAMES.has(name) || status === 401 || status === 403) return "access_denied";
  if (NO_SPACE_S3_NAMES.has(name) || status === INSUFFICIENT_STORAGE) return "no_space";
  // MinIO answers some writes on full drives with a 500 InternalError that says so.
  if (status === 500 && NO_SPACE_MESSAGE.test(typeof e.message === "string" ? e.message : ""))
    return "no_space";
  if (RETRYABLE_S3_NAMES.has(name)) return "unavailable";
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return "unavailable";
  const code = typeof e.code === "string" ? e.code : "";
  if (NO_SPACE_SYSTEM_CODES.has(code) || (EDQUOT_ERRNO !== undefined && e.errno === EDQUOT_ERRNO))
    return "no_space";
  if (RETRYABLE_SYSTEM_CODES.has(code)) return "unavailable";
  if (ACCESS_DENIED_SYSTEM_CODES.has(code)) return "access_denied";
  if (e.$retryable) return "unavailable";
  if (e.cause !== undefined && e.cause !== error) {
    const inner = classifyStoreError(e.cause);
    if (inner !== "failed") return inner;
  }
  return "failed";
}

/**
 * Whether a store operation that threw `error` may succeed if tried again later: 5xx, throttling,
 * network errors, timeouts and a full disk yes; 403, a missing bucket, a bad key or bad metadata no.
 */
export function isRetryableStoreError(error: unknown): boolean {
  return retryableCode(classifyStoreError(error));
}

function retryableCode(code: ArchiveStoreErrorCode): boolean {
  return code === "unavailable" || code === "no_space" || code === "checksum_refused";
}

/**
 * Whether a store failure is the deployment's, not the row's: the credential or the permission
 * is refused (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, a bare 403, EACCES, EPERM,
 * EROFS), the bucket is missing, the disk or quota is full (ENOSPC, EDQUOT, MinIO's 507), or the
 * store refuses the SDK's request checksums (an S3-compatible's setting).
 * Every row would fail the same way, so the archive stage pauses instead of failing any (or, for
 * a full disk, retrying each row on its own until its file expires). Only the store's own errors
 * count: a download's 403 is an expired URL, a row's problem.
 */
export function isStoreOutage(error: unknown): boolean {
  return (
    isArchiveStoreError(error) &&
    (error.code === "access_denied" ||
      error.code === "no_such_bucket" ||
      error.code === "no_space" ||
      error.code === "checksum_refused")
  );
}

/**
 * File-system errors (they carry a `syscall`) become ArchiveStoreErrors; the body's own error
 * (a failed download) and an abort pass through unchanged, so the caller sees why it failed.
 */
export function folderStoreError(error: unknown, path: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return signal.reason;
  if (isArchiveStoreError(error)) return error;
  if (typeof (error as { syscall?: unknown } | null)?.syscall !== "string") return error;
  return new ArchiveStoreError({
    code: classifyStoreError(error),
    message: `Folder store failed at ${path}: ${(error as Error).message}`,
    location: path,
    cause: error,
  });
}

/** A temporary file removed while its put ran: the put is tried again. */
export function tempGone(temp: string): ArchiveStoreError {
  return new ArchiveStoreError({
    code: "unavailable",
    message: `the temporary file ${temp} was removed while the put ran (its process's folder taken for a dead one's by a sweep?)`,
  });
}
