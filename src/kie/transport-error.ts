/**
 * Errors thrown by the HTTP layer (undici, Node sockets) as KieErrors. Pure: it looks only at the
 * error's `code`, `syscall` and `message`, so any object with those fields classifies the same.
 */
import { KieError } from "./errors.js";
import {
  isConnectPhaseError,
  isRetryableTransportError,
  isTimeoutError,
  type KieOperation,
  mayHaveCreatedAfterTransportError,
} from "./rules.js";
import { noScrub, type Scrub, safeCause } from "./secrets.js";

export interface TransportErrorContext {
  operation: KieOperation;
  endpoint: string;
  scrub?: Scrub;
}

/**
 * `network` or `timeout`; retryable unless undici refused the request as malformed; for a submit
 * `maybeCreated` unless the request provably never left (connect phase, closed client).
 */
export function fromTransportError(error: unknown, context: TransportErrorContext): KieError {
  const scrub = context.scrub ?? noScrub;
  const cause = safeCause(error, scrub);
  const syscall = (error as { syscall?: unknown } | null)?.syscall;
  const syscallName = typeof syscall === "string" ? syscall : undefined;
  const timeout = isTimeoutError(cause.code);
  const phase = isConnectPhaseError(cause.code, syscallName)
    ? "before the request was sent"
    : "once connected";
  const what = timeout ? "timed out" : "network error";
  return new KieError({
    code: timeout ? "timeout" : "network",
    retryable: isRetryableTransportError(cause.code),
    maybeCreated: mayHaveCreatedAfterTransportError(context.operation, cause.code, syscallName),
    endpoint: context.endpoint,
    message: `${context.endpoint}: ${what} ${phase} (${cause.code ?? cause.name}: ${cause.message})`,
    cause,
  });
}
