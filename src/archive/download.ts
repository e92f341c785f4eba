import type { Readable } from "node:stream";
import { Agent, type Dispatcher, request } from "undici";
import { DownloadError } from "./download-error.js";
import { HostGuard } from "./host-guard.js";
import type { ImageDigest } from "./image-stream.js";
import { ImageStream } from "./image-stream.js";
import type { ImageContentType, ImageExtension } from "./image-type.js";

interface DownloadTimeouts {
  /** TCP (and TLS) connect. @defaultValue 10_000 */
  connectMs?: number;
  /** From request sent to response headers. @defaultValue 30_000 */
  headersMs?: number;
  /** Longest silence between two body chunks. @defaultValue 30_000 */
  bodyMs?: number;
  /**
   * The whole download, first request to last byte: a host that drips a byte now and then (never
   * silent for `bodyMs`) would otherwise hold the archive slot, and the row in `archiving`, for
   * good. A transient failure: the archive job tries again later. @defaultValue 600_000
   */
  totalMs?: number;
}

export interface DownloadImageOptions {
  /** An http(s) URL. */
  url: string;
  /**
   * Hosts that may resolve to private, loopback or link-local addresses: `host` (any port) or
   * `host:port`. Every other host (first URL and each redirect) must resolve only to public ones.
   */
  allowHosts: readonly string[];
  signal?: AbortSignal;
  /** @defaultValue 5 */
  maxRedirects?: number;
  timeouts?: DownloadTimeouts;
  /** Bodies longer than this fail with `too_large`. @defaultValue 256 MiB */
  maxBytes?: number;
  /**
   * Replaces the internal per-download Agent: a worker's `createDownloadAgent` (kept-alive
   * connections, each new one vetted the same way), or a proxy. The host check still runs before
   * every hop, but the connection is then made by this dispatcher's own DNS lookup, so the
   * protection against DNS rebinding is the dispatcher's business. Not closed by the download.
   */
  dispatcher?: Dispatcher;
}

export interface DownloadedImage {
  /** The body, checked for magic bytes and hashed on the way; consume it or destroy it. */
  stream: Readable;
  contentType: ImageContentType;
  ext: ImageExtension;
  /** Resolves after the last byte has been read from `stream`; rejects if it failed or was destroyed. */
  done: Promise<ImageDigest>;
}

const DEFAULT_MAX_REDIRECTS = 5;
const DEFAULT_MAX_IMAGE_BYTES = 256 * 1024 * 1024;
const DEFAULT_TIMEOUTS: Required<DownloadTimeouts> = {
  connectMs: 10_000,
  headersMs: 30_000,
  bodyMs: 30_000,
  totalMs: 600_000,
};
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const EXPIRED_STATUSES: ReadonlySet<number> = new Set([403, 404, 410]);

/**
 * Starts streaming an image: vets the host (and every redirect's host) against private
 * addresses, follows at most `maxRedirects` redirects, maps HTTP answers to DownloadError
 * codes, and resolves once the first bytes proved a PNG or JPEG. The image is never held whole
 * in memory. If the signal aborts, rejects (or fails the stream) with the signal's reason.
 */
export async function downloadImage(options: DownloadImageOptions): Promise<DownloadedImage> {
  const { allowHosts } = options;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  options.signal?.throwIfAborted();
  // The caller's signal, and the whole download's deadline (`totalMs`), as one: whichever ends
  // first ends every request and the body stream with its reason.
  const overall = new AbortController();
  const deadline = setTimeout(() => {
    overall.abort(
      new DownloadError({
        code: "transient",
        message: `Download from ${new URL(options.url).host} did not finish within ${Math.round(timeouts.totalMs / 1000)} s: given up for now`,
      }),
    );
  }, timeouts.totalMs);
  deadline.unref?.();
  const signal = options.signal ? AbortSignal.any([options.signal, overall.signal]) : overall.signal;

  const guard = new HostGuard(allowHosts);
  const ownAgent =
    options.dispatcher === undefined
      ? new Agent({ connect: { lookup: guard.lookup, timeout: timeouts.connectMs } })
      : undefined;
  const dispatcher = options.dispatcher ?? ownAgent!;
  const release = () => {
    clearTimeout(deadline);
    ownAgent?.destroy().catch(() => {});
  };

  try {
    let url = parseHttpUrl(options.url);
    for (let hop = 0; ; hop++) {
      await guard.vet(url, signal);
      let response: Dispatcher.ResponseData;
      try {
        // undici 7's request() never follows redirects by itself (that is the redirect
        // interceptor's job), so every hop comes back here and is vetted first.
        response = await request(url, {
          dispatcher,
          method: "GET",
          signal,
          headersTimeout: timeouts.headersMs,
          bodyTimeout: timeouts.bodyMs,
          headers: { accept: "image/png, image/jpeg;q=0.9, */*;q=0.1" },
        });
      } catch (error) {
        throw toDownloadError(error, url, signal);
      }
      const status = response.statusCode;
      if (REDIRECT_STATUSES.has(status)) {
        await response.body.dump().catch(() => {});
        const location = headerValue(response.headers.location);
        if (location === undefined) {
          throw httpError("http_error", `Redirect ${status} from ${url.host} has no Location`, url, status);
        }
        if (hop >= maxRedirects) {
          throw httpError(
            "http_error",
            // Where it started, as the other messages name a URL: host and path, never its query.
            `More than ${maxRedirects} redirects from ${startedAt(options.url)}`,
            url,
            status,
          );
        }
        url = parseHttpUrl(location, url);
        continue;
      }
      if (status < 200 || status > 299) {
        await response.body.dump().catch(() => {});
        throw statusError(status, url);
      }
      // A body with a declared length or chunks is checked for its end by undici; one that ends
      // when the connection closes only by the image's own end marker (ImageStream).
      const delimited =
        response.headers["content-length"] !== undefined ||
        /chunked/i.test(String(response.headers["transfer-encoding"] ?? ""));
      return await handOn(
        response.body,
        url,
        signal,
        options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES,
        release,
        !delimited,
      );
    }
  } catch (error) {
    release();
    throw error;
  }
}

async function handOn(
  body: Dispatcher.ResponseData["body"],
  url: URL,
  signal: AbortSignal | undefined,
  maxBytes: number,
  release: () => void,
  checkEnd: boolean,
): Promise<DownloadedImage> {
  const image = new ImageStream({ source: url.host, maxBytes, checkEnd });
  body.on("error", (error) => image.destroy(toDownloadError(error, url, signal) as Error));
  image.on("close", () => {
    if (!body.destroyed) body.destroy();
    release();
  });
  body.pipe(image);
  const type = await image.type;
  return { stream: image, contentType: type.contentType, ext: type.ext, done: image.done };
}

function parseHttpUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch (error) {
    throw new DownloadError({
      code: "invalid_url",
      // Up to its query, which may carry a signature (the other messages name host and path).
      message: `Invalid image URL ${JSON.stringify(text.split("?")[0])}`,
      cause: error,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new DownloadError({
      code: "invalid_url",
      message: `Refused image URL with scheme ${url.protocol} (only http and https)`,
      host: url.host,
    });
  }
  return url;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A download's first URL as messages name it: host and path (its query may carry a signature). */
function startedAt(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return "an unreadable URL";
  }
}

function httpError(code: "http_error", message: string, url: URL, status: number): DownloadError {
  return new DownloadError({ code, message, httpStatus: status, host: url.host });
}

/** 403/404/410 expired; 408, 429 and 5xx transient; any other non-2xx http_error. */
export function statusError(status: number, url: URL): DownloadError {
  const where = `${url.host}${url.pathname}`;
  if (EXPIRED_STATUSES.has(status)) {
    return new DownloadError({
      code: "expired",
      message: `Image URL ${where} answered ${status}: expired or gone; refresh it`,
      httpStatus: status,
      host: url.host,
    });
  }
  const transient = status >= 500 || status === 408 || status === 429;
  return new DownloadError({
    code: transient ? "transient" : "http_error",
    message: `Image URL ${where} answered HTTP ${status}`,
    httpStatus: status,
    host: url.host,
  });
}

/** Network errors, timeouts and cut bodies are transient; an abort stays the signal's reason. */
function toDownloadError(error: unknown, url: URL, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof DownloadError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  return new DownloadError({
    code: "transient",
    message: `Download from ${url.host} failed: ${(error as Error)?.message ?? String(error)}${typeof code === "string" ? ` (${code})` : ""}`,
    host: url.host,
    cause: error,
  });
}
