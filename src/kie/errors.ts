import { CodedError, isCodedError } from "../core/errors.js";
/**
 * The one error class for KIE answers. Classification is by `code` (stable strings), so it
 * survives serialisation into Redis and crossing process boundaries where `instanceof` does not.
 */

/** What a KIE error means for the whole fleet, beyond the one job that met it. */
export type FleetEffect =
  /** 429: back off every submitter; the request created nothing and costs no attempt. */
  | "rate-limited"
  /** 455: maintenance; back off every submitter and retry. */
  | "maintenance"
  /** 402: credits insufficient; pause submissions until the balance returns. */
  | "out-of-credits"
  /** 433: the key's own usage cap; pause and probe now and then. */
  | "usage-cap"
  /** 401: bad or missing key; pause until an operator resumes. */
  | "bad-key";

export type KieErrorCode =
  | "bad_request" // 400
  | "unauthorized" // 401
  | "insufficient_credits" // 402
  | "not_found" // 404
  | "validation" // 422
  | "record_not_found" // 422 "recordInfo is null" (unknown task, or created a moment ago)
  | "rate_limited" // 429
  | "usage_cap" // 433
  | "maintenance" // 455
  | "server_error" // 500 and other 5xx codes in the body
  | "generation_failed" // 501
  | "feature_disabled" // 505
  | "http_error" // HTTP 502/503/504 and other unexpected HTTP statuses
  | "network" // connect errors, resets
  | "timeout" // connect/headers/body timeouts
  | "bad_response" // an answer that did not match any known shape
  | "unknown_code"; // a body code the table does not know

export interface KieErrorOptions {
  code: KieErrorCode;
  message: string;
  retryable: boolean;
  fleetEffect?: FleetEffect;
  /** A submit whose request may have reached KIE without us reading the answer. */
  maybeCreated?: boolean;
  httpStatus?: number;
  /** The `code` field of the body, where there was one. */
  apiCode?: number;
  /** The endpoint path (never the full URL with a query holding secrets; KIE puts none there). */
  endpoint?: string;
  cause?: unknown;
}

export class KieError extends CodedError<KieErrorCode> {
  override readonly name = "KieError";
  readonly fleetEffect: FleetEffect | undefined;
  readonly maybeCreated: boolean;
  readonly httpStatus: number | undefined;
  readonly apiCode: number | undefined;
  readonly endpoint: string | undefined;

  constructor(options: KieErrorOptions) {
    super(options.code, options.message, options);
    this.fleetEffect = options.fleetEffect;
    this.maybeCreated = options.maybeCreated ?? false;
    this.httpStatus = options.httpStatus;
    this.apiCode = options.apiCode;
    this.endpoint = options.endpoint;
  }

  protected override details() {
    const { fleetEffect, maybeCreated, httpStatus, apiCode, endpoint } = this;
    return { fleetEffect, maybeCreated, httpStatus, apiCode, endpoint };
  }
}

/** True for a KieError, also one that crossed a serialisation boundary. */
export function isKieError(error: unknown): error is KieError {
  return isCodedError(error, KieError, "KieError");
}
