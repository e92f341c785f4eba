import { ArchiveStoreError } from "./store-error.js";
import { TEMP_FOLDER } from "./temp-folder.js";

/**
 * Every store writes its metadata files as `.<name>.meta.json` beside the object; the folder store
 * wrote its temporary files as `.<name>.<...>.tmp` there (and still does on another file system).
 */
const RESERVED_NAME = /^\..*\.(tmp|meta\.json)$/;

/**
 * Throws unless `key` is a relative, `/`-separated path that stays inside the store's root:
 * no empty, `.` or `..` segment, no leading `/`, no backslash or NUL, and not a name the stores
 * reserve for their own files (`.<anything>.tmp`, `.<anything>.meta.json`, and the folder store's
 * temporary folder `.kie-tmp` at the root). Both stores apply
 * it, so a key that works in a folder works in S3 and the other way round.
 */
export function assertValidKey(key: string): void {
  const refuse = (why: string): never => {
    throw new ArchiveStoreError({
      code: "invalid_key",
      message: `Invalid archive key ${JSON.stringify(key)}: ${why}`,
    });
  };
  if (key.length === 0) refuse("empty");
  if (key.length > 900) refuse("longer than 900 characters");
  if (key.startsWith("/")) refuse("absolute");
  if (key.includes("\\")) refuse("contains a backslash");
  if (key.includes("\0")) refuse("contains NUL");
  for (const segment of key.split("/")) {
    if (segment === "") refuse("has an empty path segment");
    if (segment === "." || segment === "..") refuse(`has a "${segment}" segment`);
  }
  if (key.split("/")[0] === TEMP_FOLDER) refuse(`is in ${TEMP_FOLDER}, the store's own temporary folder`);
  const base = key.slice(key.lastIndexOf("/") + 1);
  if (RESERVED_NAME.test(base)) refuse("names a file reserved for the store itself");
}
