/**
 * csv-parse over a manifest's bytes from some record on (csv.ts): line numbers are computed here,
 * not taken from csv-parse: its `info.lines` is where a record ENDS, and it counts a CRLF inside a
 * quoted field as two lines. Its `info.bytes` (the offset just past the record's delimiter) and
 * `info.empty_lines` (blank lines skipped so far) are exact, so a record starts on the line of
 * the byte after the previous record, plus the blank lines skipped in between. `LineIndex` maps
 * offsets to lines as the bytes flow past; a line ends where a record may (LF, CRLF or a lone CR).
 */

import { CsvError, parse } from "csv-parse";
import { ManifestParseError } from "./errors.js";
import { LineIndex } from "./line-index.js";
import { MANIFEST_LIMITS, type RawRow } from "./types.js";

/** CRLF first: a CR followed by LF is one line end, not two. */
const RECORD_DELIMITERS = ["\r\n", "\n", "\r"];

/** What csv-parse reports with each record (the part used here), and the record as written. */
interface CsvRecord {
  record: string[];
  raw: string;
  info: { bytes: number; empty_lines: number };
}

const QUOTE = 0x22;
const COMMA = 0x2c;

/** A record whose quotes csv-parse's relax_quotes read as text, though its writer meant a quoted cell. */
interface QuoteFault {
  /** The field, from 0. */
  field: number;
  /** Line breaks in the record before the fault (a cell over several lines before it). */
  linesBefore: number;
  /**
   * `text-after-close`: the cell opens with a quote and goes on after its closing quote (`"ab"c`,
   * `"a 5" tall vase"`). `quote-after-blank`: the cell's first character after spaces or tabs is
   * a quote (`1, "a cat, on a mat"`). Either way a quoted cell was meant, whose commas or line
   * breaks relax_quotes reads as the row's own (`"He said "hi"` then `and left",7` on the next
   * line: two rows, the second looking valid), so where the row ends cannot be known: the file's
   * error, as a quote never closed is.
   */
  kind: "text-after-close" | "quote-after-blank";
}

const FAULT_REASON: Record<QuoteFault["kind"], string> = {
  "text-after-close":
    'a closing quote must be followed by a comma or the end of the line; to keep a quote in a quoted cell, double it ("a 5"" tall vase")',
  "quote-after-blank":
    'a quote after a space at the start of a cell; remove the space before the quote (a quoted cell must start with it), or double a quote that belongs to the text ("")',
};

const SPACE = 0x20;
const TAB = 0x09;

/**
 * In one record as written (csv-parse's `raw`, which starts with the blank lines skipped before
 * it), the first cell whose quotes were meant otherwise than relax_quotes reads them, or
 * undefined. A quote inside a cell that does not open with one (after no blank) is text; a quote
 * never closed is csv-parse's own error (undefined here).
 */
function quoteFault(raw: string): QuoteFault | undefined {
  const end = raw.length;
  const lineEnd = (i: number) => raw.charCodeAt(i) === 0x0a || raw.charCodeAt(i) === 0x0d;
  const endsField = (i: number) => i >= end || raw.charCodeAt(i) === COMMA || lineEnd(i);
  let i = 0;
  while (i < end && lineEnd(i)) i++;
  const start = i;
  let field = 0;
  for (;;) {
    if (raw.charCodeAt(i) === QUOTE) {
      let close = raw.indexOf('"', i + 1);
      while (close !== -1 && raw.charCodeAt(close + 1) === QUOTE) close = raw.indexOf('"', close + 2);
      if (close === -1) return undefined;
      i = close + 1;
      if (!endsField(i)) return { field, kind: "text-after-close", linesBefore: linesBefore(raw, start, i) };
    } else {
      let blank = true;
      while (!endsField(i)) {
        const c = raw.charCodeAt(i);
        if (c === QUOTE && blank)
          return { field, kind: "quote-after-blank", linesBefore: linesBefore(raw, start, i) };
        if (c !== SPACE && c !== TAB) blank = false;
        i++;
      }
    }
    if (i >= end || raw.charCodeAt(i) !== COMMA) return undefined;
    i++;
    field++;
  }
}

/** The line breaks (LF, CRLF, a lone CR: one each) in `raw` from `from` to before `to`. */
function linesBefore(raw: string, from: number, to: number): number {
  let lines = 0;
  for (let k = from; k < to; k++) {
    const c = raw.charCodeAt(k);
    if (c === 0x0a || (c === 0x0d && raw.charCodeAt(k + 1) !== 0x0a)) lines++;
  }
  return lines;
}

/** Where the reader stands: what a record or an error needs to place itself. */
interface CsvCursor {
  /** Offsets are counted from where csv-parse started; this many lines came before. */
  baseLine: number;
  lines: LineIndex;
  /** Offset just past the last record's delimiter. */
  endOfPrevious: number;
  /** Blank lines skipped before the last record. */
  emptyLinesBefore: number;
  /** The header's columns, once read: an error names the column it is in. */
  columns: () => string[] | undefined;
}

/**
 * csv-parse over the bytes from some record on (the file's start, or where the fast scanner
 * stopped: `baseLine` lines before it).
 */
export class CsvParseReader {
  private readonly cursor: CsvCursor;
  // Records are taken from `on_record` (and kept off the stream) rather than by iterating the
  // parser: a stream's async iterator throws an error as soon as it happens, dropping records
  // parsed before it, and the position of the error depends on those records.
  private readonly queue: CsvRecord[] = [];
  private failure: unknown;
  /** Set at a record that stops the reading (`quoteFault`'s `quote-after-blank`). */
  private stopped = false;
  private readonly parser: ReturnType<typeof parse>;

  constructor(
    private readonly file: string,
    columns: () => string[] | undefined,
    /** Takes each record with the line it starts on, adding its row (if any) to `rows`. */
    private readonly onRecord: (record: string[], line: number, rows: RawRow[]) => void,
    baseLine: number,
  ) {
    this.cursor = { lines: new LineIndex(), baseLine, endOfPrevious: 0, emptyLinesBefore: 0, columns };
    this.parser = parse({
      relax_column_count: true,
      // A quote inside a field that does not open with one is the text's own (`a sign that says
      // "hi"`), as spreadsheet programs and Python's csv read it: one such prompt no longer stops
      // the whole file. A field that opens with a quote is quoted and must close as RFC 4180 says;
      // a quoted comma left unquoted splits its row, which the row's field count then reports.
      relax_quotes: true,
      raw: true,
      skip_empty_lines: true,
      max_record_size: MANIFEST_LIMITS.maxRowChars,
      // Every line ending ends a record, whatever the first one was: csv-parse's own detection
      // keeps the first it meets, so a CRLF file with some bare LFs (files pasted together) would
      // merge two rows into one prompt, silently, and leave a CR at the end of LF rows' last field.
      record_delimiter: RECORD_DELIMITERS,
      // With `raw`, each record comes as { record, raw } (csv-parse's types say string[]).
      on_record: (entry: unknown, info: CsvRecord["info"]) => {
        const { record, raw } = entry as { record: string[]; raw: string };
        this.queue.push({ record, raw, info: { bytes: info.bytes, empty_lines: info.empty_lines } });
        return null;
      },
    });
    this.parser.on("error", (error) => {
      this.failure ??= error;
    });
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Parses `chunk`, adding its rows to `rows`; a failure is kept for `throwFailure`. */
  async write(chunk: Buffer, rows: RawRow[]): Promise<void> {
    this.cursor.lines.add(chunk);
    await new Promise<void>((resolve) => this.parser.write(chunk, () => resolve()));
    this.takeRows(rows);
  }

  async end(rows: RawRow[]): Promise<void> {
    this.cursor.lines.end();
    await new Promise<void>((resolve) => {
      this.parser.once("error", () => resolve());
      this.parser.end(() => resolve());
    });
    this.takeRows(rows);
  }

  /** Throws the parse failure, if any, placed on its line. */
  throwFailure(): void {
    const error = this.failure;
    if (error === undefined) return;
    throw error instanceof CsvError ? fromCsvError(error, this.file, this.cursor) : error;
  }

  destroy(): void {
    this.parser.destroy();
  }

  /** Turns the parsed records into rows, placing each on the line where it starts. */
  private takeRows(rows: RawRow[]): void {
    const { cursor, queue } = this;
    for (const { record, raw, info } of queue) {
      // Nothing is read past a cell whose quotes were meant otherwise (below): where its row ends
      // is unknown. (csv-parse's own errors come after the records it queued: those are read.)
      if (this.stopped) break;
      const line =
        cursor.baseLine +
        cursor.lines.lineAt(cursor.endOfPrevious) +
        (info.empty_lines - cursor.emptyLinesBefore);
      cursor.endOfPrevious = info.bytes;
      cursor.emptyLinesBefore = info.empty_lines;
      const fault = raw.includes('"') ? quoteFault(raw) : undefined;
      if (fault !== undefined) {
        const name = cursor.columns()?.[fault.field];
        const where = `field ${fault.field + 1}${name === undefined ? "" : ` ("${name}")`}: `;
        this.stopped = true;
        this.failure = new ManifestParseError({
          code: "syntax",
          file: this.file,
          // The line the bad cell is on, not the record's first (a cell over lines before it).
          line: line + fault.linesBefore,
          reason: `${where}${FAULT_REASON[fault.kind]}`,
        });
        break;
      }
      this.onRecord(record, line, rows);
    }
    queue.length = 0;
  }
}

/** Places a csv-parse error: quote errors at the line where their record starts or the error is. */
function fromCsvError(error: CsvError, file: string, cursor: CsvCursor): ManifestParseError {
  const context = error as unknown as { bytes?: number; empty_lines?: number; column?: number | string };
  const recordLine =
    cursor.baseLine +
    cursor.lines.lineAt(cursor.endOfPrevious) +
    ((context.empty_lines ?? 0) - cursor.emptyLinesBefore);
  const errorLine =
    typeof context.bytes === "number" ? cursor.baseLine + cursor.lines.lineAt(context.bytes) : recordLine;
  const index = typeof context.column === "number" ? context.column : undefined;
  const name = index === undefined ? undefined : cursor.columns()?.[index];
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
