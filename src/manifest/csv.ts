/**
 * Streaming CSV reader (RFC 4180) over csv-parse: a header row, UTF-8 with or without BOM,
 * CRLF or LF, quoted commas, doubled quotes and newlines inside quotes.
 *
 * Line numbers are computed here, not taken from csv-parse: its `info.lines` is where a record
 * ENDS, and it counts a CRLF inside a quoted field as two lines. Its `info.bytes` (the offset
 * just past the record's delimiter) and `info.empty_lines` (blank lines skipped so far) are
 * exact, so a record starts on the line of the byte after the previous record, plus the blank
 * lines skipped in between. `LineIndex` maps offsets to lines as the bytes flow past.
 */

import { CsvError, parse } from "csv-parse";
import { ManifestParseError } from "./errors.js";
import { LineIndex } from "./line-index.js";
import { MANIFEST_LIMITS, type RawRow, setOwn } from "./types.js";
import { readUtf8Chunks } from "./utf8.js";

/** What csv-parse reports with each record when `info: true` (the part used here). */
interface CsvRecord {
  record: string[];
  info: { bytes: number; empty_lines: number };
}

/** Where the reader stands: what a record or an error needs to place itself. */
interface CsvCursor {
  lines: LineIndex;
  /** Offset just past the last record's delimiter. */
  endOfPrevious: number;
  /** Blank lines skipped before the last record. */
  emptyLinesBefore: number;
  columns: string[] | undefined;
}

/**
 * Yields one RawRow per data record, with the physical line where it starts (header = line 1).
 * Records whose cells are all blank are skipped (spreadsheets export empty rows as ",,,").
 * Throws ManifestParseError for an unusable header, malformed CSV or bytes that are not UTF-8.
 */
export async function* readCsvRows(path: string, file: string): AsyncGenerator<RawRow> {
  for await (const rows of readCsvBatches(path, file)) yield* rows;
}

/**
 * `readCsvRows` a chunk of the file at a time: the rows parsed from each block of bytes, in order
 * (a million rows cross one async step per block, not several per row). Never an empty array.
 */
export async function* readCsvBatches(path: string, file: string): AsyncGenerator<RawRow[]> {
  const cursor: CsvCursor = {
    lines: new LineIndex(),
    endOfPrevious: 0,
    emptyLinesBefore: 0,
    columns: undefined,
  };
  // Records are taken from `on_record` (and kept off the stream) rather than by iterating the
  // parser: a stream's async iterator throws an error as soon as it happens, dropping records
  // parsed before it, and the position of the error depends on those records.
  const queue: CsvRecord[] = [];
  let failure: unknown;
  const parser = parse({
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: MANIFEST_LIMITS.maxRowChars,
    on_record: (record: string[], info: CsvRecord["info"]) => {
      queue.push({ record, info: { bytes: info.bytes, empty_lines: info.empty_lines } });
      return null;
    },
  });
  parser.on("error", (error) => {
    failure ??= error;
  });
  try {
    for await (const chunk of readUtf8Chunks(path, file)) {
      cursor.lines.add(chunk);
      await new Promise<void>((resolve) => parser.write(chunk, () => resolve()));
      const rows = takeRows(queue, cursor, file);
      if (rows.length > 0) yield rows;
      if (failure !== undefined) throw failure;
    }
    await new Promise<void>((resolve) => {
      parser.once("error", () => resolve());
      parser.end(() => resolve());
    });
    const rows = takeRows(queue, cursor, file);
    if (rows.length > 0) yield rows;
    if (failure !== undefined) throw failure;
  } catch (error) {
    throw error instanceof CsvError ? fromCsvError(error, file, cursor) : error;
  } finally {
    parser.destroy();
  }
  if (cursor.columns === undefined) {
    throw new ManifestParseError({
      code: "structure",
      file,
      line: 1,
      reason: 'the file is empty: expected a header row with a "prompt" column',
    });
  }
}

/** Turns the parsed records into rows, placing each on the line where it starts. */
function takeRows(queue: CsvRecord[], cursor: CsvCursor, file: string): RawRow[] {
  const rows: RawRow[] = [];
  for (const { record, info } of queue) {
    const line = cursor.lines.lineAt(cursor.endOfPrevious) + (info.empty_lines - cursor.emptyLinesBefore);
    cursor.endOfPrevious = info.bytes;
    cursor.emptyLinesBefore = info.empty_lines;
    if (cursor.columns === undefined) {
      cursor.columns = readHeader(record, file, line);
    } else if (!record.every((cell) => cell.trim() === "")) {
      rows.push(toRawRow(record, cursor.columns, line));
    }
  }
  queue.length = 0;
  return rows;
}

/** Column names, trimmed; an empty name becomes `column_N`. Requires `prompt`, refuses duplicates. */
function readHeader(record: string[], file: string, line: number): string[] {
  const columns = record.map((name, i) => name.trim() || `column_${i + 1}`);
  const firstIndex = new Map<string, number>();
  for (const [i, name] of columns.entries()) {
    const earlier = firstIndex.get(name);
    if (earlier !== undefined) {
      throw new ManifestParseError({
        code: "structure",
        file,
        line,
        reason: `column "${name}" appears twice in the header (columns ${earlier + 1} and ${i + 1})`,
      });
    }
    firstIndex.set(name, i);
  }
  if (!firstIndex.has("prompt")) {
    const lookalike = columns.find((name) => name.toLowerCase().replace(/[^a-z]/g, "") === "prompt");
    const hint =
      lookalike === undefined ? "" : `; column names are case-sensitive: rename "${lookalike}" to "prompt"`;
    throw new ManifestParseError({
      code: "structure",
      file,
      line,
      reason: `no "prompt" column in the header (found: ${columns.map((c) => `"${c}"`).join(", ")})${hint}`,
    });
  }
  return columns;
}

function toRawRow(record: string[], columns: string[], line: number): RawRow {
  const fields: Record<string, unknown> = {};
  for (const [i, name] of columns.entries()) setOwn(fields, name, record[i] ?? "");
  const extra = record.slice(columns.length);
  if (record.length < columns.length || extra.some((cell) => cell.trim() !== "")) {
    return {
      line,
      fields,
      problem: {
        field: "row",
        message: `expected ${columns.length} fields as in the header, found ${record.length} (an unquoted comma or line break in a cell?)`,
      },
    };
  }
  return { line, fields };
}

/** Places a csv-parse error: quote errors at the line where their record starts or the error is. */
function fromCsvError(error: CsvError, file: string, cursor: CsvCursor): ManifestParseError {
  const context = error as unknown as { bytes?: number; empty_lines?: number; column?: number | string };
  const recordLine =
    cursor.lines.lineAt(cursor.endOfPrevious) + ((context.empty_lines ?? 0) - cursor.emptyLinesBefore);
  const errorLine = typeof context.bytes === "number" ? cursor.lines.lineAt(context.bytes) : recordLine;
  const index = typeof context.column === "number" ? context.column : undefined;
  const name = index === undefined ? undefined : cursor.columns?.[index];
  const where = index === undefined ? "" : `field ${index + 1}${name === undefined ? "" : ` ("${name}")`}: `;
  switch (error.code) {
    case "CSV_QUOTE_NOT_CLOSED":
      return new ManifestParseError({
        code: "syntax",
        file,
        line: recordLine,
        reason: 'a quoted field opened in the record starting on this line is never closed (a stray "?)',
        cause: error,
      });
    case "CSV_MAX_RECORD_SIZE":
      return new ManifestParseError({
        code: "too-large",
        file,
        line: recordLine,
        reason: `the record starting on this line is longer than ${MANIFEST_LIMITS.maxRowChars} characters (an unclosed quote?)`,
        cause: error,
      });
    case "INVALID_OPENING_QUOTE":
      return new ManifestParseError({
        code: "syntax",
        file,
        line: errorLine,
        reason: `${where}a quote inside an unquoted field; quote the whole field and double the quote (e.g. "a 5"" tall vase")`,
        cause: error,
      });
    case "CSV_INVALID_CLOSING_QUOTE":
      return new ManifestParseError({
        code: "syntax",
        file,
        line: errorLine,
        reason: `${where}a closing quote must be followed by a comma or the end of the line; double a quote that belongs to the text ("")`,
        cause: error,
      });
    default:
      return new ManifestParseError({
        code: "syntax",
        file,
        line: errorLine,
        reason: `not valid CSV: ${error.message}`,
        cause: error,
      });
  }
}
