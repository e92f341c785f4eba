/**
 * Manifest reading and row validation: pure (no Redis, no BullMQ), streaming, constant memory.
 *
 *   const manifest = await openManifest(path, { format, displayName });
 *   const validate = createRowValidator({ file: manifest.file, sets, defaults: manifest.defaults });
 *   for await (const raw of manifest.rows()) { const result = validate(raw); ... }
 */

export { readCsvRows } from "./csv.js";
export {
  formatRowError,
  isManifestParseError,
  ManifestOptionError,
  ManifestParseError,
  type RowError,
} from "./errors.js";
export {
  assertBatchName,
  BATCH_NAME_RE,
  canonicalJson,
  defaultBatchName,
  deriveRowId,
  estimateCredits,
} from "./ids.js";
export { readJsonDefaults, readJsonRows } from "./json.js";
export { readJsonlRows } from "./jsonl.js";

export { detectFormat, type Manifest, openManifest } from "./read.js";
export {
  createRowValidator,
  type ManifestRow,
  parseSetArguments,
  type RowContext,
  type RowResult,
  validateRow,
} from "./row.js";
export { SetUsage } from "./set-usage.js";
export type { ManifestFormat, RawRow } from "./types.js";
