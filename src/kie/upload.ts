/**
 * KIE's File Upload API (its own base URL, e.g. https://kieai.redpandaai.co): one multipart
 * `POST /api/file-stream-upload` per file, Bearer auth with the account's key, answered
 * `{success, code, msg, data: {downloadUrl, ...}}` and judged by the one answer classifier.
 *
 * The request carries the file and the key, so it goes to the configured origin and nowhere
 * else: a redirect is refused, never followed (undici's `request` does not follow one by itself).
 */
import { randomBytes } from "node:crypto";
import { type Dispatcher, Pool } from "undici";
import { z } from "zod";
import { type AnswerContext, readAnswer } from "./answer.js";
import { KieError } from "./errors.js";
import { readText } from "./read-body.js";
import { createScrubber } from "./secrets.js";
import { fromTransportError } from "./transport-error.js";

const UPLOAD_ENDPOINT = "/api/file-stream-upload";

/** Hosts a plain-http upload base URL may name: this machine only. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The folder uploads go to on KIE's side (`uploadPath`). */
const UPLOAD_PATH = "kie-batch";

const UPLOAD_DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  maxResponseBytes: 1_048_576,
} as const;

/** The `data` of an upload answer; only `downloadUrl` is relied on. */
const uploadDataSchema = z.object({
  // What KIE is later told to fetch: an http(s) address, nothing else (file:, data:, ...).
  downloadUrl: z
    .string()
    .url()
    .refine((url) => /^https?:$/.test(new URL(url).protocol), "expected an http(s) URL"),
  fileName: z.string().nullish(),
  filePath: z.string().nullish(),
  fileSize: z.number().nullish(),
  mimeType: z.string().nullish(),
  uploadedAt: z.union([z.string(), z.number()]).nullish(),
});

export interface UploadFile {
  bytes: Buffer;
  /** The name KIE stores it under (a file of the same name in the same folder is overwritten). */
  fileName: string;
  mimeType: string;
}

interface UploadedFile {
  downloadUrl: string;
}

/** What the submit stage needs to turn a local image into a URL KIE can fetch. */
export interface FileUploader {
  /** Uploads one file. Throws KieError (retryable for network trouble and 5xx). */
  upload(file: UploadFile, signal?: AbortSignal): Promise<UploadedFile>;
}

export interface UploadClientOptions {
  /** The File Upload API's base URL (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`, only to `baseUrl`'s origin. */
  apiKey: string;
  /** An undici dispatcher instead of the client's own Pool; the caller closes it. */
  dispatcher?: Dispatcher;
  /** @defaultValue 60_000 */
  headersTimeoutMs?: number;
}

export interface UploadClient extends FileUploader {
  close(): Promise<void>;
}

export function createUploadClient(options: UploadClientOptions): UploadClient {
  const base = new URL(options.baseUrl);
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new TypeError(`KIE upload base URL must be http(s), got ${base.protocol}`);
  }
  // The API key and the files travel in the clear over http: only to this machine (a simulator).
  if (base.protocol === "http:" && !LOOPBACK_HOSTS.has(base.hostname)) {
    throw new TypeError(
      `KIE upload base URL must be https (plain http only to a loopback address), got http://${base.host}`,
    );
  }
  const basePath = base.pathname.replace(/\/+$/, "");
  const headersTimeout = options.headersTimeoutMs ?? UPLOAD_DEFAULTS.headersTimeoutMs;
  const ownPool = options.dispatcher
    ? undefined
    : new Pool(base.origin, {
        connections: 4,
        connect: { timeout: UPLOAD_DEFAULTS.connectTimeoutMs },
        headersTimeout,
        bodyTimeout: UPLOAD_DEFAULTS.bodyTimeoutMs,
      });
  const dispatcher: Dispatcher = options.dispatcher ?? ownPool!;
  const scrub = createScrubber(options.apiKey);
  let closing: Promise<void> | undefined;

  return {
    async upload(file: UploadFile, signal?: AbortSignal): Promise<UploadedFile> {
      const context: AnswerContext = { operation: "upload", endpoint: `POST ${UPLOAD_ENDPOINT}`, scrub };
      signal?.throwIfAborted();
      const { body, contentType } = multipartBody(file);
      let httpStatus: number;
      let text: string;
      try {
        const response = await dispatcher.request({
          origin: base.origin,
          path: `${basePath}${UPLOAD_ENDPOINT}`,
          method: "POST",
          headers: {
            accept: "application/json",
            "user-agent": "kie-batch",
            authorization: `Bearer ${options.apiKey}`,
            "content-type": contentType,
            "content-length": String(body.length),
          },
          body,
          signal: signal ?? null,
          headersTimeout,
          bodyTimeout: UPLOAD_DEFAULTS.bodyTimeoutMs,
        });
        httpStatus = response.statusCode;
        if (httpStatus >= 300 && httpStatus < 400) {
          await response.body.dump().catch(() => undefined);
          throw redirectRefused(httpStatus, response.headers.location, base, context);
        }
        text = await readText(response.body, UPLOAD_DEFAULTS.maxResponseBytes, context, scrub);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof KieError) throw error;
        throw fromTransportError(error, context);
      }
      const data = readAnswer({ httpStatus, body: text }, context, uploadDataSchema);
      return { downloadUrl: data.downloadUrl };
    },

    close(): Promise<void> {
      closing ??= ownPool ? ownPool.close() : Promise.resolve();
      return closing;
    },
  };
}

/** A redirect would send the file and the key on to another place: refused, and not worth retrying. */
function redirectRefused(
  httpStatus: number,
  location: string | string[] | undefined,
  base: URL,
  context: AnswerContext,
): KieError {
  const target = typeof location === "string" ? safeOrigin(location, base) : "nowhere";
  return new KieError({
    code: "http_error",
    retryable: false,
    httpStatus,
    endpoint: context.endpoint,
    message: `${context.endpoint}: the upload service answered a redirect (HTTP ${httpStatus}) to ${target}: not followed (files and the API key go only to KIE_UPLOAD_BASE_URL)`,
  });
}

/** The origin a Location names (never its path or query, which might carry anything). */
function safeOrigin(location: string, base: URL): string {
  try {
    return new URL(location, base).origin;
  } catch {
    return "an unreadable location";
  }
}

/** `multipart/form-data` with `uploadPath`, `fileName` and `file`, built in memory (files are small). */
function multipartBody(file: UploadFile): { body: Buffer; contentType: string } {
  const boundary = `kie-batch-${randomBytes(12).toString("hex")}`;
  const name = file.fileName.replace(/["\r\n\\]/g, "_");
  const field = (key: string, value: string) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${key}"\r\n\r\n${value}\r\n`);
  const body = Buffer.concat([
    field("uploadPath", UPLOAD_PATH),
    field("fileName", name),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: ${file.mimeType}\r\n\r\n`,
    ),
    file.bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}
