/**
 * Streaming CSV reader (RFC 4180): a header row, UTF-8 with or without BOM, CRLF or LF, quoted
 * commas, doubled quotes and newlines inside quotes; a quote inside a field that does not open
 * with one is text (`a sign that says "hi"`), as spreadsheet programs read it; a quoted field with
 * text after its closing quote, or a quote after blanks at a field's start, refuses the file
 * (csv-parse-reader.ts `quoteFault`). The common case is read by a scanner of its
 * own (csv-fast.ts); csv-parse (csv-parse-reader.ts) reads from the first record the scanner
 * leaves, so every rule and error message of the rarer cases is csv-parse's.
 */

import { FastCsvScanner, type ScannedRecord } from "./csv-fast.js";
import { CsvParseReader } from "./csv-parse-reader.js";
import { ManifestParseError } from "./errors.js";
import { type RawRow, setOwn } from "./types.js";
import { readUtf8Chunks } from "./utf8.js";

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
 *
 * The common case is read by FastCsvScanner; from the first record it leaves (a CR, a stray
 * quote, an unclosed quote...), csv-parse reads the rest of the file (every line ending ends a
 * record there, CRLF, LF or CR alike), so rows, line numbers and errors are csv-parse's throughout.
 * `options.fast: false` reads the whole file with csv-parse (the tests compare the two).
 */
export async function* readCsvBatches(
  path: string,
  file: string,
  options: { fast?: boolean } = {},
): AsyncGenerator<RawRow[]> {
  const header: HeaderState = { columns: undefined };
  const csvParse = (baseLine: number) =>
    new CsvParseReader(file, () => header.columns, onRecord(header, file), baseLine);
  const fast = options.fast === false ? undefined : new FastCsvScanner();
  let slow = fast === undefined ? csvParse(0) : undefined;
  /** Scans a block (all of it, or up to where csv-parse takes over) into `rows`. */
  const scan = async (scanner: FastCsvScanner, text: string, final: boolean, rows: RawRow[]) => {
    const scanned = scanner.scan(text, final);
    recordsToRows(scanned.records, header, file, rows);
    if (scanned.rest === undefined) return;
    slow = csvParse(scanner.line - 1);
    await slow.write(Buffer.from(scanned.rest, "utf8"), rows);
  };
  try {
    for await (const chunk of readUtf8Chunks(path, file, { loneCr: true })) {
      const rows: RawRow[] = [];
      if (slow === undefined) await scan(fast!, chunk.toString("utf8"), false, rows);
      else await slow.write(chunk, rows);
      if (rows.length > 0) yield rows;
      slow?.throwFailure();
    }
    const rows: RawRow[] = [];
    if (slow === undefined) await scan(fast!, "", true, rows);
    if (slow !== undefined && !slow.failed) await slow.end(rows);
    if (rows.length > 0) yield rows;
    slow?.throwFailure();
  } finally {
    slow?.destroy();
  }
  if (header.columns === undefined) {
    throw new ManifestParseError({
      code: "structure",
      file,
      line: 1,
      reason: 'the file is empty: expected a header row with a "prompt" column',
    });
  }
}

/** The header's columns once read (the first record); shared by the scanner and csv-parse. */
interface HeaderState {
  columns: string[] | undefined;
}

/** The fast scanner's records as rows (the first record read is the header). */
function recordsToRows(records: ScannedRecord[], header: HeaderState, file: string, rows: RawRow[]): void {
  for (const { fields, line } of records) addRecord(fields, line, header, file, rows);
}

/** `addRecord` for csv-parse's records. */
function onRecord(header: HeaderState, file: string) {
  return (record: string[], line: number, rows: RawRow[]) => addRecord(record, line, header, file, rows);
}

/** One record: the header if none was read yet, else a row unless all its cells are blank. */
function addRecord(record: string[], line: number, header: HeaderState, file: string, rows: RawRow[]): void {
  if (header.columns === undefined) header.columns = readHeader(record, file, line);
  else if (!record.every((cell) => cell.trim() === "")) rows.push(toRawRow(record, header.columns, line));
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
