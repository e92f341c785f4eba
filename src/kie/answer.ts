/**
 * The one place where a KIE answer becomes data or a typed error. Pure: it gets the HTTP status
 * and the body text, never a socket.
 *
 * Order of precedence (KIE puts outcomes in the body and often answers HTTP 200; proxies send
 * real HTTP statuses):
 * 1. HTTP 429, whatever the body: rate limited (the request created nothing).
 * 2. HTTP 502/503/504: the gateway's own answer; its body is not KIE's.
 * 3. A JSON body with a `code` other than 200: the code table, whatever the HTTP status.
 * 4. Any other non-2xx HTTP status: the fleet-wide rows of the code table (401, 402, 433, 455)
 *    by HTTP status, else `http_error` (retryable for 5xx and 408).
 * 5. HTTP 2xx: `{code: 200, data}` validated by the caller's schema; for status calls also the
 *    bare record (the seed's example). Anything else is `bad_response`.
 */
import type { z } from "zod";
import { KieError, type KieErrorOptions } from "./errors.js";
import {
  API_CODE_RULES,
  type ErrorRule,
  GATEWAY_HTTP_STATUSES,
  isRetryableHttpStatus,
  type KieOperation,
  ruleForApiCode,
  submitMayHaveCreatedAfterHttpStatus,
} from "./rules.js";
import { envelopeSchema } from "./schemas.js";
import { excerpt, noScrub, type Scrub } from "./secrets.js";

export interface RawAnswer {
  httpStatus: number;
  /** The body as received (UTF-8 text); "" for none. */
  body: string;
}

export interface AnswerContext {
  operation: KieOperation;
  /** Method and path, e.g. "POST /api/v1/qwen/generate" (never a full URL). */
  endpoint: string;
  /** Removes the API key from any text that goes into an error. @defaultValue no scrubbing */
  scrub?: Scrub;
}

/**
 * Returns the answer's data, validated by `dataSchema`, or throws a KieError.
 * For `operation: "status"` a bare record (no envelope) is validated by the same schema.
 */
export function readAnswer<T>(answer: RawAnswer, context: AnswerContext, dataSchema: z.ZodType<T>): T {
  const scrub = context.scrub ?? noScrub;
  const { httpStatus } = answer;
  const isSubmit = context.operation === "submit";
  const fail = (options: Omit<KieErrorOptions, "endpoint" | "httpStatus">): never => {
    throw new KieError({ ...options, httpStatus, endpoint: context.endpoint });
  };

  if (httpStatus === 429) {
    fail({ ...fromRule(API_CODE_RULES[429]!), message: `${context.endpoint}: rate limited (HTTP 429)` });
  }
  if (GATEWAY_HTTP_STATUSES.has(httpStatus)) {
    fail({
      code: "http_error",
      retryable: true,
      maybeCreated: isSubmit && submitMayHaveCreatedAfterHttpStatus(httpStatus),
      message: `${context.endpoint}: HTTP ${httpStatus} from a gateway${bodyNote(answer.body, scrub)}`,
    });
  }

  const json = parseJson(answer.body);
  const envelope = envelopeSchema.safeParse(json);
  if (envelope.success && envelope.data.code !== 200) {
    const apiCode = envelope.data.code;
    const apiMessage = envelope.data.msg ?? envelope.data.message ?? undefined;
    const rule = ruleForApiCode(apiCode, apiMessage);
    fail({
      ...fromRule(rule),
      apiCode,
      message: `${context.endpoint}: ${rule.label} (code ${apiCode}${apiMessage ? `: ${excerpt(apiMessage, scrub)}` : ""})`,
    });
  }

  if (httpStatus < 200 || httpStatus > 299) {
    // Without a KIE body only the fleet-wide rows are trusted by HTTP status (an auth proxy's
    // 401, say). A bare HTTP 404 or 422 is more likely a wrong base URL than a missing task, and
    // must not read as "this task is gone".
    const fleetRule = API_CODE_RULES[httpStatus];
    fail({
      ...(fleetRule?.fleetEffect
        ? fromRule(fleetRule)
        : { code: "http_error", retryable: isRetryableHttpStatus(httpStatus) }),
      maybeCreated: isSubmit && submitMayHaveCreatedAfterHttpStatus(httpStatus),
      message: `${context.endpoint}: ${fleetRule?.fleetEffect ? fleetRule.label : "unexpected answer"} (HTTP ${httpStatus})${bodyNote(answer.body, scrub)}`,
    });
  }

  // From here on the server answered 2xx. For a submit that is a sign the request got through,
  // so an unreadable answer may hide a created task.
  const badResponse = (what: string): never =>
    fail({
      code: "bad_response",
      retryable: true,
      maybeCreated: isSubmit,
      message: `${context.endpoint}: ${what}`,
    });

  if (json === undefined) return badResponse(`answer is not JSON${bodyNote(answer.body, scrub)}`);
  if (envelope.success) {
    const data = dataSchema.safeParse(envelope.data.data);
    if (data.success) return data.data;
    return badResponse(`unexpected data in a code 200 answer (${describeIssues(data.error)})`);
  }
  if (context.operation === "status" && isObjectWithoutCode(json)) {
    const record = dataSchema.safeParse(json);
    if (record.success) return record.data;
    return badResponse(`unexpected status record (${describeIssues(record.error)})`);
  }
  return badResponse(`answer has no usable code (${describeIssues(envelope.error)})`);
}

function fromRule(rule: ErrorRule): Pick<KieErrorOptions, "code" | "retryable" | "fleetEffect"> {
  return rule.fleetEffect === undefined
    ? { code: rule.code, retryable: rule.retryable }
    : { code: rule.code, retryable: rule.retryable, fleetEffect: rule.fleetEffect };
}

function parseJson(body: string): unknown {
  if (body.trim() === "") return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function isObjectWithoutCode(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !("code" in value);
}

function bodyNote(body: string, scrub: Scrub): string {
  const text = excerpt(body, scrub);
  return text === "" ? "" : `: ${text}`;
}

/** Paths and messages of the first few issues; zod's messages name types, never values. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}
