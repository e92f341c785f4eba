import { ArchiveStoreError } from "./store-error.js";

/** S3's cap on user metadata: the UTF-8 bytes of every key and value, summed. */
const MAX_METADATA_BYTES = 2048;

/** Lower-case so that what `head()` returns equals what `put()` was given (S3 lower-cases keys). */
const METADATA_KEY = /^[a-z0-9][a-z0-9._-]*$/;
/** Printable ASCII, not empty, no leading or trailing blank (HTTP would trim it away). */
const METADATA_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Throws an `invalid_metadata` ArchiveStoreError unless S3 itself would accept `metadata` and
 * give it back unchanged. s3rver accepts what real S3 refuses (non-ASCII, over 2 KB), so this
 * check must be ours; the folder store applies it too so both stores behave alike.
 */
export function assertValidMetadata(metadata: Readonly<Record<string, string>>): void {
  let total = 0;
  for (const [key, value] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(key)) {
      throw new ArchiveStoreError({
        code: "invalid_metadata",
        message: `Invalid metadata key ${JSON.stringify(key)}: use lower-case ASCII letters, digits, ".", "_" and "-"`,
      });
    }
    if (typeof value !== "string" || !METADATA_VALUE.test(value)) {
      throw new ArchiveStoreError({
        code: "invalid_metadata",
        message: `Invalid value for metadata "${key}": S3 metadata must be non-empty printable ASCII without leading or trailing blanks (put non-ASCII text in the JSON sidecar)`,
      });
    }
    total += key.length + value.length;
  }
  if (total > MAX_METADATA_BYTES) {
    throw new ArchiveStoreError({
      code: "invalid_metadata",
      message: `Metadata is ${total} bytes; S3 allows at most ${MAX_METADATA_BYTES} (keys and values summed)`,
    });
  }
}
