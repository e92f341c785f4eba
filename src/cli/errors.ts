import { ConfigError } from "../config/index.js";
import { CodedError, ValueError } from "../core/errors.js";

/** An error whose message is meant for the user as is, with the exit code to leave with. */
export class UsageError extends CodedError<"usage"> {
  override readonly name = "UsageError";
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super("usage", message);
  }
}

/** Prints an error the way a user should see it (no stack for expected failures) and exits. */
export function exitWithError(error: unknown): never {
  if (error instanceof UsageError) {
    process.stderr.write(`kie-batch: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  // A bad flag, argument or variable: a usage problem, as ConfigError.
  if (error instanceof ConfigError || error instanceof ValueError) {
    process.stderr.write(`kie-batch: ${error.message}\n`);
    process.exit(2);
  }
  // Redis not answering, or holding batches of an older key layout: the message says what to do.
  if (
    error instanceof Error &&
    (error.name === "RedisUnavailableError" ||
      (error.name === "LedgerError" && (error as { code?: unknown }).code === "old_layout"))
  ) {
    process.stderr.write(`kie-batch: ${error.message}\n`);
    process.exit(1);
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`kie-batch: unexpected error: ${message}\n`);
  process.exit(1);
}
