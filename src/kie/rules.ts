/**
 * What every KIE outcome means, as constant tables and pure predicates. `answer.ts` and
 * `transport-error.ts` only look things up here, so the whole policy reads in one screen and is
 * tested row by row.
 *
 * `retryable` means "the same request, unchanged, may succeed later": no job is failed for it.
 * Every error with a `fleetEffect` is retryable; the fleet effect says what the fleet must do
 * first (pause, back off, wait for an operator).
 */
import type { FleetEffect, KieErrorCode } from "./errors.js";

/** The four kinds of call the client makes; `submit` is the only one that can create (and cost) anything. */
export type KieOperation = "submit" | "status" | "credit" | "download-url" | "upload";

export interface ErrorRule {
  code: KieErrorCode;
  retryable: boolean;
  fleetEffect?: FleetEffect;
  /** Human words for the error message. */
  label: string;
}

/** The body `code` table of KIE-API.md ("Errors come in the body, usually with HTTP 200"). */
export const API_CODE_RULES: Readonly<Record<number, ErrorRule>> = {
  400: { code: "bad_request", retryable: false, label: "bad request" },
  401: { code: "unauthorized", retryable: true, fleetEffect: "bad-key", label: "bad or missing API key" },
  402: {
    code: "insufficient_credits",
    retryable: true,
    fleetEffect: "out-of-credits",
    label: "credits insufficient",
  },
  404: { code: "not_found", retryable: false, label: "not found" },
  422: { code: "validation", retryable: false, label: "validation error" },
  429: { code: "rate_limited", retryable: true, fleetEffect: "rate-limited", label: "rate limited" },
  433: { code: "usage_cap", retryable: true, fleetEffect: "usage-cap", label: "key usage cap exceeded" },
  455: {
    code: "maintenance",
    retryable: true,
    fleetEffect: "maintenance",
    label: "service under maintenance",
  },
  500: { code: "server_error", retryable: true, label: "server error" },
  501: { code: "generation_failed", retryable: false, label: "generation failed" },
  505: { code: "feature_disabled", retryable: false, label: "feature disabled" },
};

/**
 * 422 "recordInfo is null": an unknown task, or one created a moment ago (KIE lags). Retryable:
 * the caller decides how long the lag may last before it believes the task is really gone.
 */
const RECORD_NOT_FOUND_RULE: ErrorRule = {
  code: "record_not_found",
  retryable: true,
  label: "record not found (unknown task, or created a moment ago)",
};

/** HTTP statuses a gateway or proxy answers on its own; the body, if any, is not KIE's. */
export const GATEWAY_HTTP_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/**
 * HTTP statuses after which a submit may have created a task. 502 and 504 mean the proxy
 * forwarded the request and lost (or never got) the answer. 503 is left out on purpose: a proxy
 * answers 503 when it has no upstream to forward to, so the request did not reach KIE. Any other
 * HTTP 5xx without a readable KIE body is treated like 502: we cannot know.
 */
export function submitMayHaveCreatedAfterHttpStatus(httpStatus: number): boolean {
  return httpStatus >= 500 && httpStatus !== 503;
}

/** HTTP statuses worth retrying when the body holds no KIE code. */
export function isRetryableHttpStatus(httpStatus: number): boolean {
  return httpStatus >= 500 || httpStatus === 408 || httpStatus === 429;
}

export function isRecordNotFoundMessage(message: string | undefined): boolean {
  return message !== undefined && /record\s*info\s+is\s+null/i.test(message);
}

/** The rule for a body `code` other than 200. Unknown codes are retryable when they look like 5xx. */
export function ruleForApiCode(apiCode: number, message: string | undefined): ErrorRule {
  if (apiCode === 422 && isRecordNotFoundMessage(message)) return RECORD_NOT_FOUND_RULE;
  return (
    API_CODE_RULES[apiCode] ?? {
      code: "unknown_code",
      retryable: apiCode >= 500,
      label: `unknown answer code ${apiCode}`,
    }
  );
}

/**
 * Error codes raised while connecting: the request was never written, so a submit created
 * nothing. Node's connect errors (`syscall: "connect"`) are recognised as well.
 */
const CONNECT_PHASE_ERROR_CODES: ReadonlySet<string> = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  // A closed client refuses a request before it reaches a socket.
  "UND_ERR_CLOSED",
]);

/** Timeouts, by undici error code. */
const TIMEOUT_ERROR_CODES: ReadonlySet<string> = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);

/**
 * Local mistakes that no retry fixes (an invalid argument to undici). Everything else that goes
 * wrong on the wire is transient.
 */
const NON_RETRYABLE_TRANSPORT_ERROR_CODES: ReadonlySet<string> = new Set([
  "UND_ERR_INVALID_ARG",
  "UND_ERR_NOT_SUPPORTED",
  "ERR_INVALID_URL",
]);

export function isConnectPhaseError(errorCode: string | undefined, syscall: string | undefined): boolean {
  return (errorCode !== undefined && CONNECT_PHASE_ERROR_CODES.has(errorCode)) || syscall === "connect";
}

export function isTimeoutError(errorCode: string | undefined): boolean {
  return errorCode !== undefined && TIMEOUT_ERROR_CODES.has(errorCode);
}

export function isRetryableTransportError(errorCode: string | undefined): boolean {
  return errorCode === undefined || !NON_RETRYABLE_TRANSPORT_ERROR_CODES.has(errorCode);
}

/**
 * A submit that failed on the wire may have created a task unless it failed while connecting
 * (or undici refused it locally). Only a submit can create anything.
 */
export function mayHaveCreatedAfterTransportError(
  operation: KieOperation,
  errorCode: string | undefined,
  syscall: string | undefined,
): boolean {
  if (operation !== "submit") return false;
  if (isConnectPhaseError(errorCode, syscall)) return false;
  return isRetryableTransportError(errorCode);
}
