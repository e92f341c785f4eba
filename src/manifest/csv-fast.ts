/**
 * The common CSV case read without csv-parse: LF line ends, fields either unquoted (a `"` in
 * them is text, as csv-parse's relax_quotes reads it) or quoted whole (`""` for a quote, commas
 * and line feeds inside), each followed by a comma, a line feed or the end of the file. Anything
 * else (a CR anywhere, text after a closing quote, a quote after blanks at a cell's start, an
 * unclosed quote, a very long record) is left to
 * csv-parse from the start of the record where it appears, so every error, and every rule of
 * the rarer cases, is still csv-parse's (csv.ts). What this reads, it reads as csv-parse does
 * with the options csv.ts gives it (a test compares the two on random files).
 */

const LF = 0x0a;
const CR = 0x0d;
const COMMA = 0x2c;
const QUOTE = 0x22;
const SPACE = 0x20;
const TAB = 0x09;

/**
 * A record left incomplete at the end of a block is carried to the next; past this many
 * characters it is handed to csv-parse, which applies the row limit (MANIFEST_LIMITS.maxRowChars:
 * this bound, plus a block, stays below it even at 4 bytes a character).
 */
const MAX_CARRIED_CHARS = 200_000;

/** A record read, with the physical line where it starts. */
export interface ScannedRecord {
  fields: string[];
  line: number;
}

export interface ScanResult {
  records: ScannedRecord[];
  /**
   * Set when the scanner stopped at a record it leaves to csv-parse: the text from just after
   * the last record read (blank lines before the stop included, as csv-parse counts them). The
   * scanner is done then; `line` is the line that text starts on.
   */
  rest?: string;
}

export class FastCsvScanner {
  /** The line where the text not yet handed out starts. */
  line = 1;
  /** Whether a line feed was met outside quotes (csv-parse has then found its record delimiter). */
  private lineFeedMet = false;
  private carried = "";

  /** Reads the records of `text` (after what was carried); `final` for the end of the file. */
  scan(text: string, final: boolean): ScanResult {
    const s = this.carried + text;
    this.carried = "";
    const n = s.length;
    const firstCr = s.indexOf("\r");
    const records: ScannedRecord[] = [];
    /** Just after the last record read, and its line. */
    let committed = 0;
    let committedLine = this.line;
    let pos = 0;
    let line = this.line;
    while (pos < n) {
      if (s.charCodeAt(pos) === LF) {
        // A blank line: skipped, as csv-parse's skip_empty_lines does.
        line++;
        pos++;
        this.lineFeedMet = true;
        continue;
      }
      const fields: string[] = [];
      let newlines = 0;
      let complete = false;
      let unsupported = false;
      for (;;) {
        if (pos < n && s.charCodeAt(pos) === QUOTE) {
          let value = "";
          let from = pos + 1;
          let close = -1;
          for (;;) {
            const q = s.indexOf('"', from);
            if (q === -1 || (q + 1 === n && !final)) break;
            if (q + 1 < n && s.charCodeAt(q + 1) === QUOTE) {
              value += s.slice(from, q + 1);
              from = q + 2;
              continue;
            }
            value += s.slice(from, q);
            close = q;
            break;
          }
          if (close === -1) {
            // Unclosed so far: more text may close it; at the end of the file it is csv-parse's error.
            unsupported = final;
            break;
          }
          for (let at = s.indexOf("\n", pos); at !== -1 && at < close; at = s.indexOf("\n", at + 1))
            newlines++;
          fields.push(value);
          pos = close + 1;
          if (pos === n) {
            complete = true;
            break;
          }
          const next = s.charCodeAt(pos);
          if (next === COMMA) {
            pos++;
            continue;
          }
          if (next === LF) {
            complete = final || this.lineFeedReadable(s, pos);
            if (complete) {
              pos++;
              newlines++;
            }
            break;
          }
          unsupported = true;
          break;
        }
        let end = pos;
        let c = 0;
        // A quote here is the text's own (the field did not open with one): csv-parse's
        // relax_quotes reads it so too. One after nothing but blanks is left to csv-parse (a
        // quoted cell meant, whose row cannot be placed: csv-parse-reader.ts refuses the file).
        let blank = true;
        while (end < n) {
          c = s.charCodeAt(end);
          if (c === COMMA || c === LF || c === CR || (c === QUOTE && blank)) break;
          if (c !== SPACE && c !== TAB) blank = false;
          end++;
        }
        if (end < n && (c === CR || c === QUOTE)) {
          unsupported = true;
          break;
        }
        if (end === n && !final) break;
        if (end < n && c === LF && !final && !this.lineFeedReadable(s, end)) break;
        fields.push(s.slice(pos, end));
        pos = end + 1;
        if (end === n || c === LF) {
          if (c === LF && end < n) newlines++;
          complete = true;
          break;
        }
      }
      if (unsupported || (complete && firstCr !== -1 && firstCr < pos)) {
        this.line = committedLine;
        return { records, rest: s.slice(committed) };
      }
      if (!complete) break;
      records.push({ fields, line });
      line += newlines;
      this.lineFeedMet = true;
      committed = Math.min(pos, n);
      committedLine = line;
    }
    // What is left (an incomplete record, blank lines) is read again with the next block.
    this.line = committedLine;
    if (committed < n && !final) {
      if (n - committed > MAX_CARRIED_CHARS) return { records, rest: s.slice(committed) };
      this.carried = s.slice(committed);
    }
    return { records };
  }

  /**
   * Whether csv-parse would end the record at the line feed at `at` before more bytes arrive:
   * it reads a byte only with 2 bytes after it until it has found the record delimiter, 1 after.
   * The same records then come out of a block (which matters when the next block is unreadable:
   * the header's error or the encoding error, whichever csv-parse would have met first).
   */
  private lineFeedReadable(s: string, at: number): boolean {
    const after = s.length - 1 - at;
    const bytesAfter = after >= 2 ? 2 : after === 1 ? (s.charCodeAt(at + 1) < 0x80 ? 1 : 2) : 0;
    return bytesAfter >= (this.lineFeedMet ? 1 : 2);
  }
}
