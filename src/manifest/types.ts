/** Shapes shared by the manifest readers and the row validator. */

export const MANIFEST_FORMATS = ["csv", "json", "jsonl"] as const;
export type ManifestFormat = (typeof MANIFEST_FORMATS)[number];

/** One row as read from the file, before validation. */
export interface RawRow {
  /** 1-based physical line where the row starts (CSV: the header is line 1; JSON: the line of its `{`). */
  line: number;
  /** JSON: the 1-based column of its `{` (one line may hold every row). Others: none. */
  column?: number;
  /** The row's fields: strings for CSV; any JSON value for JSON and JSONL. */
  fields: Record<string, unknown>;
  /** The row's length in the file, in characters, where the reader tells it (JSON, JSONL): what a batch of rows is bounded by. */
  chars?: number;
  /**
   * Set when the reader could not make a usable row of this record (a malformed JSONL line, a
   * CSV record with more fields than the header, a JSON array element that is not an object).
   * `validateRow` reports it as the row's error; the reader goes on with the next row.
   */
  problem?: { field: string; message: string };
}

/** Bounds that keep memory constant whatever the file holds. */
export const MANIFEST_LIMITS = {
  /**
   * Largest row (CSV record, JSON row object, JSONL line) in characters. A prompt is at most 5000
   * characters, so a row past this is almost surely an unterminated quote swallowing the file.
   */
  maxRowChars: 1_000_000,
} as const;

/** Sets an own enumerable property, also for the key "__proto__" (which `obj[key] =` would not). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}
