import { CodedError, isCodedError } from "../core/errors.js";
/**
 * The one error class for fetching an image. Classification is by `code` (stable strings), so it
 * survives serialisation into Redis where `instanceof` does not.
 */

export type DownloadErrorCode =
  /** The body does not start with PNG or JPEG magic bytes. Retrying fetches the same bytes. */
  | "not_image"
  /** A host (the first or a redirect hop) resolves to a non-public address and is not allowed. */
  | "host_refused"
  /** 403/404/410: the result URL has expired; refresh it via the KIE download-url endpoint. */
  | "expired"
  /** 5xx, 408, 429, network errors, timeouts, a body cut short: retry with backoff. */
  | "transient"
  /** Any other unexpected HTTP answer (other 4xx, too many redirects, a redirect without Location). */
  | "http_error"
  /** The body is longer than the configured limit. */
  | "too_large"
  /** Not an http(s) URL, or one that does not parse. */
  | "invalid_url";

const RETRYABLE: Readonly<Record<DownloadErrorCode, boolean>> = {
  not_image: false,
  host_refused: false,
  expired: false,
  transient: true,
  http_error: false,
  too_large: false,
  invalid_url: false,
};

export interface DownloadErrorOptions {
  code: DownloadErrorCode;
  message: string;
  /** The HTTP status of the answer that caused it, where there was one. */
  httpStatus?: number;
  /** The host (`host` or `host:port`) that was refused or answered. */
  host?: string;
  cause?: unknown;
}

export class DownloadError extends CodedError<DownloadErrorCode> {
  override readonly name = "DownloadError";
  readonly httpStatus: number | undefined;
  readonly host: string | undefined;

  constructor(options: DownloadErrorOptions) {
    // Whether trying the same URL again may succeed (`expired` needs a fresh URL first).
    super(options.code, options.message, { retryable: RETRYABLE[options.code], cause: options.cause });
    this.httpStatus = options.httpStatus;
    this.host = options.host;
  }

  protected override details() {
    return { httpStatus: this.httpStatus, host: this.host };
  }
}

/** True for a DownloadError, also one that crossed a serialisation boundary. */
export function isDownloadError(error: unknown): error is DownloadError {
  return isCodedError(error, DownloadError, "DownloadError");
}
