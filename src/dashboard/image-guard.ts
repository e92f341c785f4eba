import { assertValidKey } from "../archive/keys.js";

/**
 * Whether the dashboard may serve `key` for `batch`: only a valid store key inside the batch's
 * own prefix (`<batch>/...`). A row record pointing anywhere else (another batch's images, a
 * path with `..`) is refused, so the dashboard never becomes a reader of the whole bucket.
 */
export function keyInBatch(batch: string, key: string): boolean {
  try {
    assertValidKey(key);
  } catch {
    return false;
  }
  return batch !== "" && !batch.includes("/") && key.startsWith(`${batch}/`) && key.length > batch.length + 1;
}

/** Whether an `If-None-Match` header names `etag` (a list, `*`, or weak forms count). */
export function sameEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  const strip = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => strip(tag) === strip(etag));
}
