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
