/**
 * The one entry point for reading a manifest: pick the format, read the file's defaults, then
 * stream its rows. Every reader takes a path (stdin is spooled to a temporary file by the
 * caller) so that `rows()` can be called more than once: validate everything in one pass,
 * enqueue in a second, at constant memory.
 */

import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { readCsvBatches, readCsvRows } from "./csv.js";
import { ManifestOptionError, ManifestParseError } from "./errors.js";
import { readJsonDefaults, readJsonRows } from "./json.js";
import { readJsonlRows } from "./jsonl.js";
import { MANIFEST_FORMATS, type ManifestFormat, type RawRow } from "./types.js";

const FORMAT_BY_EXTENSION: Readonly<Record<string, ManifestFormat>> = {
  ".csv": "csv",
  ".json": "json",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
};

/**
 * The format named by `explicit` (the `--format` flag) or else by the file's extension
 * (.csv, .json, .jsonl, .ndjson; any case). Throws ManifestOptionError when neither tells.
 */
export function detectFormat(path: string, explicit?: string): ManifestFormat {
  if (explicit !== undefined) {
    if ((MANIFEST_FORMATS as readonly string[]).includes(explicit)) return explicit as ManifestFormat;
    throw new ManifestOptionError(
      "--format",
      `unknown format ${JSON.stringify(explicit)}: expected one of ${MANIFEST_FORMATS.join(", ")}`,
    );
  }
  const extension = extname(path).toLowerCase();
  const format = FORMAT_BY_EXTENSION[extension];
  if (format !== undefined) return format;
  const what =
    path === "-" ? "stdin" : extension === "" ? `${path} (no extension)` : `${path} (${extension})`;
  throw new ManifestOptionError(
    "--format",
    `cannot tell the format of ${what}: name it .csv, .json, .jsonl or .ndjson, or pass --format csv|json|jsonl`,
  );
}

export interface OpenManifestOptions {
  /** The `--format` flag; overrides the extension. @defaultValue from the extension */
  format?: string;
  /** The file as named in messages, e.g. "-" when `path` is stdin spooled to a temp file. @defaultValue path */
  displayName?: string;
}

/** An opened manifest: its defaults are known, its rows are read on demand. */
export interface Manifest {
  /** The path read. */
  readonly path: string;
  /** The name used in every message (`displayName`, else the path). */
  readonly file: string;
  readonly format: ManifestFormat;
  /** The file's `defaults` (JSON `{"defaults": {...}}`); {} when none, and always for CSV and JSONL. */
  readonly defaults: Readonly<Record<string, unknown>>;
  /** Line where the defaults object starts, when there is one. */
  readonly defaultsLine: number | undefined;
  /**
   * Streams the rows, one at a time, in file order; each call reads the file anew. Throws
   * ManifestParseError (after the rows before the fault) if the file turns out unreadable, so a
   * caller that must enqueue nothing from a broken file validates in a first pass and enqueues
   * in a second. Stopping early (`break`) closes the file.
   */
  rows(): AsyncGenerator<RawRow>;
  /**
   * `rows()` in arrays, a block of the file at a time (never an empty one): what a pass over a
   * million rows iterates, so that the async steps are per block, not per row. On a fault, the
   * rows read before it are yielded before the ManifestParseError is thrown, as by `rows()`.
   */
  batches(): AsyncGenerator<RawRow[]>;
}

/**
 * Opens a manifest. Fails early, with ManifestParseError, on what can be known before the first
 * row: an unreadable file, a CSV header without `prompt`, a JSON file of the wrong shape or
 * whose defaults cannot be found; with ManifestOptionError for an unknown format.
 *
 * For JSON whose `rows` come before `defaults`, this reads the whole file once (streaming) to
 * find the defaults; `rows()` then reads it again.
 */
export async function openManifest(path: string, options: OpenManifestOptions = {}): Promise<Manifest> {
  const file = options.displayName ?? path;
  const format = detectFormat(file === "-" ? "-" : path, options.format);
  await assertReadableFile(path, file);
  let defaults: Record<string, unknown> = {};
  let defaultsLine: number | undefined;
  let rows: () => AsyncGenerator<RawRow>;
  let batches = () => inBatches(rows());
  switch (format) {
    case "csv":
      rows = () => readCsvRows(path, file);
      batches = () => readCsvBatches(path, file);
      await checkFirstRow(rows());
      break;
    case "json": {
      const found = await readJsonDefaults(path, file);
      defaults = found.defaults;
      defaultsLine = found.line;
      rows = () => readJsonRows(path, file);
      break;
    }
    case "jsonl":
      rows = () => readJsonlRows(path, file);
      break;
  }
  return { path, file, format, defaults, defaultsLine, rows, batches };
}

/** Rows gathered into arrays of up to this many (JSON and JSONL; CSV batches by block)... */
const BATCH_ROWS = 256;
/**
 * ...or of about this many characters of the file (`RawRow.chars`): 256 rows of a 300 KB metadata value each
 * (the row limit is 1M characters) would be ~77 MB held at once, twice over while validated.
 */
const BATCH_CHARS = 1_000_000;

/** `rows` in arrays of up to BATCH_ROWS or BATCH_CHARS; on a fault, the rows before it come first. */
async function* inBatches(rows: AsyncGenerator<RawRow>): AsyncGenerator<RawRow[]> {
  let batch: RawRow[] = [];
  let chars = 0;
  try {
    for await (const row of rows) {
      batch.push(row);
      chars += row.chars ?? 0;
      if (batch.length >= BATCH_ROWS || chars >= BATCH_CHARS) {
        yield batch;
        batch = [];
        chars = 0;
      }
    }
  } catch (error) {
    if (batch.length > 0) yield batch;
    throw error;
  }
  if (batch.length > 0) yield batch;
}

/** Reads up to the first row (the CSV header, for one), so header errors throw at open. */
async function checkFirstRow(rows: AsyncGenerator<RawRow>): Promise<void> {
  try {
    await rows.next();
  } finally {
    await rows.return(undefined);
  }
}

async function assertReadableFile(path: string, file: string): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (error) {
    throw new ManifestParseError({
      code: "unreadable",
      file,
      reason: `cannot read the file: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
  if (!isFile) throw new ManifestParseError({ code: "unreadable", file, reason: "not a regular file" });
}
