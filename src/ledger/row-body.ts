import type { NewRow } from "./types.js";

/*
 * A row's body: the one STRING key beside its hash (keys.body) holding what is over Redis's
 * `hash-max-listpack-value` (64 bytes by default, the user's server config), so the row hash
 * stays a listpack (a few hundred bytes, against over 2 KB as a hashtable).
 *
 *   <JSON [prompt, params, metadata]> ( RS <tag> <value> )*
 *
 * RS is the byte 0x1e, which JSON text never holds raw (JSON.stringify escapes control
 * characters). The first part is written once, by add-rows.lua; the tagged parts after it are
 * the row's long mutable fields, set and removed by transition.lua (which replaces RS in a value
 * with a space). Trailing empty params and metadata are left out of the array.
 */

/** The separator byte between the body's parts. */
const BODY_SEPARATOR = "\x1e";

/** Row fields kept in the body (tag letter), not in the hash: their values may be long. */
const BODY_FIELDS = { images: "i", error: "e", reusedFrom: "r" } as const;
export type BodyField = keyof typeof BODY_FIELDS;

/** The body add-rows.lua writes for a new row. */
export function encodeBody(row: Pick<NewRow, "prompt" | "params" | "metadata">): string {
  const hasMetadata = Object.keys(row.metadata).length > 0;
  const hasParams = Object.keys(row.params).length > 0;
  const parts: unknown[] = [row.prompt];
  if (hasParams || hasMetadata) parts.push(row.params);
  if (hasMetadata) parts.push(row.metadata);
  return JSON.stringify(parts);
}

/** A body read back: the immutable part, and the long fields by name (raw text as stored). */
export interface DecodedBody {
  prompt: string;
  params: Record<string, unknown>;
  metadata: Record<string, string>;
  fields: Partial<Record<BodyField, string>>;
}

const FIELD_OF_TAG = new Map<string, BodyField>(
  Object.entries(BODY_FIELDS).map(([field, tag]) => [tag, field as BodyField]),
);

export function decodeBody(body: string): DecodedBody {
  const [base = "", ...rest] = body.split(BODY_SEPARATOR);
  const [prompt = "", params = {}, metadata = {}] = (base === "" ? [] : JSON.parse(base)) as [
    string?,
    Record<string, unknown>?,
    Record<string, string>?,
  ];
  const fields: Partial<Record<BodyField, string>> = {};
  for (const part of rest) {
    const field = FIELD_OF_TAG.get(part.slice(0, 1));
    if (field) fields[field] = part.slice(1);
  }
  return { prompt, params, metadata, fields };
}
