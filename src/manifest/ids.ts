/**
 * Row ids, batch names and the credit estimate. A row without an `id` is named by what it asks
 * for, so enqueuing the same file twice (or the same row twice) names the same job: BullMQ then
 * refuses the duplicate, and no image is paid for twice.
 */

import crypto from "node:crypto";
import { basename, extname } from "node:path";
import { DEFAULT_PRICES, type PriceTable, priceOf } from "../kie/prices.js";
import type { GenerationParams } from "../kie/types.js";
import { ManifestOptionError } from "./errors.js";

/**
 * JSON with object keys sorted at every depth and `undefined` members left out. Numbers are JSON
 * numbers, so 7.5 parsed from "7.50" and the JSON number 7.5 write the same text.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(",")}]`;
  // Once per row of a million-row file: no entry arrays or closures. `sort()` with no comparator
  // orders strings by UTF-16 code units, as `<` does, so the text (and every id) is unchanged.
  const record = value as Record<string, unknown>;
  let text = "{";
  for (const key of Object.keys(record).sort()) {
    const member = record[key];
    if (member === undefined) continue;
    if (text.length > 1) text += ",";
    text += `${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${text}}`;
}

/** One-shot sha256 (node:crypto `hash`, Node >= 20.12; package.json asks 20.18.1): no Hash object per row. */
const sha256Hex = (text: string): string => crypto.hash("sha256", text, "hex");

/**
 * The id of a row that gives none: the first 16 hex characters of sha256 over the canonical JSON
 * of the trimmed prompt and the effective parameters (after `--set` and file defaults). Any
 * `prompt` inside `params` is replaced by the trimmed `prompt`.
 */
export function deriveRowId(prompt: string, params: Partial<GenerationParams>): string {
  const canonical = canonicalJson({ ...params, prompt: prompt.trim() });
  return sha256Hex(canonical).slice(0, 16);
}

/** Batch names: 1..64 of `A-Z a-z 0-9 . _ -`, not starting with "." (they are part of every job id). */
export const BATCH_NAME_RE = /^(?!\.)[A-Za-z0-9._-]{1,64}$/;

/** Throws ManifestOptionError unless `name` is a valid batch name. */
export function assertBatchName(name: string): void {
  if (!BATCH_NAME_RE.test(name)) {
    throw new ManifestOptionError(
      "--batch",
      `invalid batch name ${JSON.stringify(name)}: use 1 to 64 characters from A-Z a-z 0-9 . _ - , not starting with "."`,
    );
  }
}

/**
 * The batch name for a file when none is given: its base name without the extension, accents
 * dropped, every run of other characters replaced by "-", leading dots and dashes and trailing
 * dashes removed, cut to 64. It must keep at least one letter or digit.
 * Deterministic, so enqueuing the same file again lands in the same batch.
 * Throws ManifestOptionError for stdin ("-") or a name with nothing usable left.
 */
export function defaultBatchName(filePath: string): string {
  if (filePath === "-") {
    throw new ManifestOptionError("--batch", "reading from stdin: pass --batch NAME");
  }
  const base = basename(filePath);
  const stem = base.slice(0, base.length - extname(base).length);
  const name = stem
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[.-]+/, "")
    .slice(0, 64)
    .replace(/-+$/, "");
  if (!BATCH_NAME_RE.test(name) || !/[A-Za-z0-9]/.test(name)) {
    throw new ManifestOptionError(
      "--batch",
      `cannot make a batch name from ${JSON.stringify(base)}: pass --batch NAME`,
    );
  }
  return name;
}

/**
 * Credits one image is estimated to cost, from the price table (kie/prices.ts): by model and
 * acceleration (text-to-image: none 8, regular 7, high 6), and the model's dearest price when the
 * row names no acceleration, since the API's default is not documented. A row reserves this much
 * of its batch's budget for each create attempt.
 */
export function estimateCredits(
  params: Pick<GenerationParams, "acceleration_level" | "model">,
  prices: PriceTable = DEFAULT_PRICES,
): number {
  return priceOf(prices, params);
}
