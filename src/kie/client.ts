/**
 * The KIE HTTP client: `KieApi` over undici, for either API flavour. This file only wires: the
 * request shapes live in flavors.ts, answers are judged by answer.ts, records are normalised by
 * normalize.ts and wire failures are classified by transport-error.ts.
 */
import { type Dispatcher, Pool } from "undici";
import type { z } from "zod";
import { type AnswerContext, type RawAnswer, readAnswer } from "./answer.js";
import { KieError } from "./errors.js";
import { FLAVOR_ENDPOINTS, SHARED_ENDPOINTS, submitBody } from "./flavors.js";
import { normalizeRecord } from "./normalize.js";
import { readText } from "./read-body.js";
import type { KieOperation } from "./rules.js";
import { creditDataSchema, downloadUrlDataSchema, statusRecordSchema, submitDataSchema } from "./schemas.js";
import { createScrubber } from "./secrets.js";
import { fromTransportError } from "./transport-error.js";
import type { ApiFlavor, KieApi, SubmitRequest, TaskRecord } from "./types.js";

const KIE_CLIENT_DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  connections: 32,
  keepAliveTimeoutMs: 4_000,
  maxResponseBytes: 1_048_576,
} as const;

export interface KieClientOptions {
  /** Where the API lives, e.g. https://api.kie.ai (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` and nowhere else; "" sends no Authorization header. */
  apiKey: string;
  /** Which endpoints and request shapes to speak. */
  flavor: ApiFlavor;
  /** Time to establish a connection; ignored with a custom `dispatcher`. @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /** Time from sending a request to receiving its headers. @defaultValue 30_000 */
  headersTimeoutMs?: number;
  /** Longest silence while receiving a body. @defaultValue 30_000 */
  bodyTimeoutMs?: number;
  /** Keep-alive connections to the API; ignored with a custom `dispatcher`. @defaultValue 32 */
  connections?: number;
  /** How long an idle connection is kept (server hints may lower it). @defaultValue 4_000 */
  keepAliveTimeoutMs?: number;
  /** Answers larger than this are refused as `bad_response`. @defaultValue 1 MiB */
  maxResponseBytes?: number;
  /** An undici dispatcher to use instead of the client's own Pool; the caller closes it. */
  dispatcher?: Dispatcher;
}

export interface KieClient extends KieApi {
  readonly flavor: ApiFlavor;
  /** Waits for requests in flight, then closes the connections (a no-op for a caller's dispatcher). */
  close(): Promise<void>;
}

const HEADER_SAFE = /^[\x21-\x7e]+$/;

export function createKieClient(options: KieClientOptions): KieClient {
  const settings = { ...KIE_CLIENT_DEFAULTS, ...withoutUndefined(options) };
  const base = new URL(options.baseUrl);
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new TypeError(`KIE base URL must be http(s), got ${base.protocol}`);
  }
  // Checked here so undici never builds an error around a malformed header value.
  if (options.apiKey !== "" && !HEADER_SAFE.test(options.apiKey)) {
    throw new TypeError("KIE API key holds characters that cannot go into an HTTP header");
  }
  const basePath = base.pathname.replace(/\/+$/, "");
  const ownPool = options.dispatcher
    ? undefined
    : new Pool(base.origin, {
        connections: settings.connections,
        connect: { timeout: settings.connectTimeoutMs },
        headersTimeout: settings.headersTimeoutMs,
        bodyTimeout: settings.bodyTimeoutMs,
        keepAliveTimeout: settings.keepAliveTimeoutMs,
      });
  const dispatcher: Dispatcher = options.dispatcher ?? ownPool!;
  const scrub = createScrubber(options.apiKey);
  const headers: Record<string, string> = { accept: "application/json", "user-agent": "kie-batch" };
  if (options.apiKey !== "") headers.authorization = `Bearer ${options.apiKey}`;
  const endpoints = FLAVOR_ENDPOINTS[options.flavor];

  interface Call<T> {
    operation: KieOperation;
    method: "GET" | "POST";
    path: string;
    query?: string;
    json?: unknown;
    schema: z.ZodType<T>;
    signal: AbortSignal | undefined;
  }

  async function call<T>(request: Call<T>): Promise<T> {
    const context: AnswerContext = {
      operation: request.operation,
      endpoint: `${request.method} ${request.path}`,
      scrub,
    };
    request.signal?.throwIfAborted();
    const answer = await exchange(request, context);
    return readAnswer(answer, context, request.schema);
  }

  async function exchange(request: Call<unknown>, context: AnswerContext): Promise<RawAnswer> {
    try {
      const response = await dispatcher.request({
        origin: base.origin,
        path: `${basePath}${request.path}${request.query ?? ""}`,
        method: request.method,
        headers: request.json === undefined ? headers : { ...headers, "content-type": "application/json" },
        body: request.json === undefined ? null : JSON.stringify(request.json),
        signal: request.signal ?? null,
        headersTimeout: settings.headersTimeoutMs,
        bodyTimeout: settings.bodyTimeoutMs,
      });
      const body = await readText(response.body, settings.maxResponseBytes, context, scrub);
      return { httpStatus: response.statusCode, body };
    } catch (error) {
      // The caller's abort is not a KIE failure: hand back exactly what they aborted with.
      if (request.signal?.aborted) throw request.signal.reason;
      if (error instanceof KieError) throw error;
      throw fromTransportError(error, context);
    }
  }

  let closing: Promise<void> | undefined;

  return {
    flavor: options.flavor,

    async submit(request: SubmitRequest, signal?: AbortSignal): Promise<string> {
      const json = submitBody(options.flavor, request);
      if (json === undefined) throw wrongFlavor(request, endpoints.submit);
      const data = await call({
        operation: "submit",
        method: "POST",
        path: endpoints.submit,
        json,
        schema: submitDataSchema,
        signal,
      });
      return data.taskId;
    },

    async getTask(taskId: string, signal?: AbortSignal): Promise<TaskRecord> {
      const record = await call({
        operation: "status",
        method: "GET",
        path: endpoints.status,
        query: `?taskId=${encodeURIComponent(taskId)}`,
        schema: statusRecordSchema,
        signal,
      });
      return normalizeRecord(record, taskId, `GET ${endpoints.status}`);
    },

    refreshDownloadUrl(url: string, signal?: AbortSignal): Promise<string> {
      return call({
        operation: "download-url",
        method: "POST",
        path: SHARED_ENDPOINTS.downloadUrl,
        json: { url },
        schema: downloadUrlDataSchema,
        signal,
      });
    },

    getCredits(signal?: AbortSignal): Promise<number> {
      return call({
        operation: "credit",
        method: "GET",
        path: SHARED_ENDPOINTS.credit,
        schema: creditDataSchema,
        signal,
      });
    },

    close(): Promise<void> {
      closing ??= ownPool ? ownPool.close() : Promise.resolve();
      return closing;
    },
  };
}

/** A row of a market-only model on a deployment that speaks the seed's endpoints: nothing was sent. */
function wrongFlavor(request: SubmitRequest, path: string): KieError {
  return new KieError({
    code: "validation",
    retryable: false,
    endpoint: `POST ${path}`,
    message: `model ${request.model} needs KIE's market API: set KIE_API_FLAVOR=jobs (this deployment speaks the seed's qwen endpoints, which only do text-to-image); nothing was sent`,
  });
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}
