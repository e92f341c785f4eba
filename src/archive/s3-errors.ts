/** What the S3 store (s3-store.ts) makes of the SDK's errors. */
import { ArchiveStoreError, classifyStoreError, httpStatusOf, isArchiveStoreError } from "./store-error.js";

/** A refusal of the copy's checksum header by a store that does not implement it. */
export function refusesChecksum(error: unknown): boolean {
  const status = httpStatusOf(error);
  const name = (error as { name?: unknown }).name;
  return (
    (status === 400 || status === 501) &&
    (name === "InvalidArgument" || name === "NotImplemented" || name === "InvalidRequest")
  );
}

export function toStoreError(
  error: unknown,
  operation: "put" | "get" | "head" | "delete" | "copy",
  location: string,
  thirdParty: boolean,
): ArchiveStoreError {
  if (isArchiveStoreError(error)) return error;
  const classified = classifyStoreError(error);
  // AWS itself takes its SDK's checksums: a mismatch there is bytes damaged on the way, the row's
  // to put again, never a setting to change (and no pause of the fleet for it).
  const code = classified === "checksum_refused" && !thirdParty ? "unavailable" : classified;
  const e = error as { name?: unknown; message?: unknown };
  const what = typeof e?.name === "string" && e.name !== "Error" ? `${e.name}: ` : "";
  // A HEAD's refusal has no body, so no S3 code: the status is then all an operator gets.
  const status = httpStatusOf(error);
  const http = status === undefined ? "" : ` (HTTP ${status})`;
  // What to do is the operator's, and not in S3's own words.
  const hint =
    code === "checksum_refused"
      ? "; a store that does not take the AWS SDK's default request checksums (some S3-compatibles) needs AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED in the workers' environment"
      : "";
  return new ArchiveStoreError({
    code,
    message: `S3 ${operation} ${location} failed${http}: ${what}${typeof e?.message === "string" ? e.message : String(error)}${hint}`,
    location,
    httpStatus: httpStatusOf(error),
    cause: error,
  });
}
