/**
 * The producer's own error. Option and file problems are the manifest's (`ManifestOptionError`,
 * `ManifestParseError`), and Redis refusing at the start is the app's `RedisUnavailableError`;
 * this covers what can only happen once rows have been written.
 */
import { CodedError } from "../core/errors.js";

/** Enqueuing stopped part-way (Redis went away, or the file changed under the second pass). */
export class EnqueueInterruptedError extends CodedError<"interrupted"> {
  override readonly name = "EnqueueInterruptedError";
  /** Exit code for the CLI: not a usage problem, and running again finishes the job. */
  readonly exitCode = 1;

  constructor(
    readonly batch: string,
    /** Rows recorded and queued before the failure. */
    readonly enqueued: number,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      "interrupted",
      `enqueuing into batch ${batch} stopped: ${reason}\n` +
        `${enqueued} rows were enqueued before that; running the same command again enqueues the rest ` +
        "(rows already enqueued are skipped, never queued twice)",
      // Running the same command again picks up where this one stopped.
      { retryable: true, cause },
    );
  }
}

export function isEnqueueInterruptedError(error: unknown): error is EnqueueInterruptedError {
  return (
    error instanceof EnqueueInterruptedError ||
    (error instanceof Error && error.name === "EnqueueInterruptedError")
  );
}

/**
 * `--strict` could not complete its id check (the rows the batch holds under the file's given ids
 * could not be read back): it cannot promise the file has no conflict, so nothing was written.
 */
export class StrictCheckError extends CodedError<"strict-unchecked"> {
  override readonly name = "StrictCheckError";
  readonly exitCode = 1;

  constructor(batch: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      "strict-unchecked",
      `--strict: the rows batch ${batch} already holds under this file's ids could not be read back to check them for conflicts (${reason}); nothing was enqueued. Run it again, or without --strict`,
      { retryable: true, cause },
    );
  }
}

export function isStrictCheckError(error: unknown): error is StrictCheckError {
  return error instanceof StrictCheckError || (error instanceof Error && error.name === "StrictCheckError");
}
