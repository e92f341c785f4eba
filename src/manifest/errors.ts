/**
 * The manifest's error shapes. A file-level problem (the file cannot be read or parsed) throws
 * `ManifestParseError`: nothing from that file should be enqueued. A problem in a user-given
 * option (`--format`, `--set`, `--batch`) throws `ManifestOptionError`. A bad row is not thrown:
 * it is a `RowError` value, reported and skipped while the other rows go on.
 *
 * Both classes set `name` and a stable `code`, so they can be classified after crossing a
 * serialisation boundary, where `instanceof` no longer works.
 */
import { CodedError, ValueError } from "../core/errors.js";

export type ManifestParseErrorCode =
  /** The file could not be opened or read (missing, a directory, permissions). */
  | "unreadable"
  /** The bytes are not UTF-8. */
  | "encoding"
  /** Malformed CSV or JSON: unterminated quote, stray character, truncated file. */
  | "syntax"
  /** CSV header unusable (no `prompt` column, a column named twice) or JSON top-level shape wrong. */
  | "structure"
  /** The file's `defaults` hold an invalid value or an unknown key. */
  | "defaults"
  /** One row is larger than `MANIFEST_LIMITS.maxRowChars` (usually an unterminated quote). */
  | "too-large";

export interface ManifestParseErrorOptions {
  code: ManifestParseErrorCode;
  /** The file as the user named it (for stdin spooled to a temp file: "-"). */
  file: string;
  /** 1-based physical line, where known. */
  line?: number;
  /** 1-based character (code point) column within the line, where known. */
  column?: number;
  /** What is wrong, without the position prefix. */
  reason: string;
  cause?: unknown;
}

/** The file cannot be read or parsed; its message is `FILE:LINE:COLUMN: reason`. */
export class ManifestParseError extends CodedError<ManifestParseErrorCode> {
  override readonly name = "ManifestParseError";
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly reason: string;

  constructor(options: ManifestParseErrorOptions) {
    super(
      options.code,
      `${formatPosition(options.file, options.line, options.column)}: ${options.reason}`,
      options,
    );
    this.file = options.file;
    this.line = options.line;
    this.column = options.column;
    this.reason = options.reason;
  }

  protected override details() {
    const { file, line, column, reason } = this;
    return { file, line, column, reason };
  }
}

/**
 * A user-given option is invalid: `--format`, `--set key=value`, or a batch name. A ValueError
 * like every invalid flag, with its own name and code.
 */
export class ManifestOptionError extends ValueError<"invalid-option"> {
  override readonly name = "ManifestOptionError";

  /** `option` is the option at fault, e.g. "--set", "--format", "--batch". */
  constructor(option: string, message: string) {
    super(option, message, "invalid-option");
  }
}

/** One reason a row is invalid. A row may have several; all are reported. */
export interface RowError {
  /** The file as the user named it. */
  file: string;
  /** The physical line where the row starts (CSV: header is line 1; JSON: the line of the row's `{`). */
  line: number;
  /** JSON: the column of the row's `{` (a minified file is one line). */
  column?: number;
  /** The field at fault, in the name the user wrote (e.g. "acceleration", not "acceleration_level"), or "row". */
  field: string;
  /** What was expected, what was found: "expected an integer from 2 to 250, found \"abc\"". */
  message: string;
}

/**
 * `FILE:LINE: field: what was expected, what was found` (`FILE:LINE:COLUMN:` for a JSON row), the
 * one way row errors are shown.
 */
export function formatRowError(error: RowError): string {
  const column = error.column === undefined ? "" : `:${error.column}`;
  return `${error.file}:${error.line}${column}: ${error.field}: ${error.message}`;
}

export function isManifestParseError(error: unknown): error is ManifestParseError {
  return (
    error instanceof ManifestParseError ||
    (typeof error === "object" &&
      error !== null &&
      (error as { name?: unknown }).name === "ManifestParseError")
  );
}

function formatPosition(file: string, line: number | undefined, column: number | undefined): string {
  if (line === undefined) return file;
  return column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
}
