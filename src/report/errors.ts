import { CodedError } from "../core/errors.js";

/**
 * Errors of the operator commands. Each carries a stable `code` and the exit code the CLI leaves
 * with, so the command layer maps them without knowing every case.
 */
export type OpsErrorCode =
  /** The batch is not in the ledger under this queue prefix. */
  | "unknown_batch"
  /** A command argument the ledger refuses (a batch name it cannot hold); bad flag values are ValueErrors. */
  | "invalid_argument"
  /** No KIE account is known: KIE_API_KEY is unset and no worker has registered one. */
  | "no_account"
  /** Another `purge` of the batch holds its lease: one at a time. */
  | "purge_running";

export class OpsError extends CodedError<OpsErrorCode> {
  override readonly name = "OpsError";
  /** Usage problems exit 2, as every other usage error of the CLI. */
  readonly exitCode = 2;
}

export function isOpsError(error: unknown): error is OpsError {
  return error instanceof OpsError || (error instanceof Error && error.name === "OpsError");
}
