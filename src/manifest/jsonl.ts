/**
 * JSONL / NDJSON reader: one JSON object per line, blank lines skipped, LF or CRLF. A line that is
 * not a JSON object, or an object that gives a key twice, is an error for that row only (so a file
 * that is not JSONL at all shows up as an error on each line); only bytes that are not UTF-8 stop
 * the whole file.
 */

import { repeatedTopLevelKey } from "./repeated-key.js";
import { MANIFEST_LIMITS, type RawRow } from "./types.js";
import { readUtf8Text } from "./utf8.js";
import { describeValue } from "./values.js";

export async function* readJsonlRows(path: string, file: string): AsyncGenerator<RawRow> {
  let line = 1;
  let partial = "";
  let tooLong = false;
  for await (const text of readUtf8Text(path, file)) {
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      const row = tooLong ? tooLongRow(line) : parseLine(partial + text.slice(start, end), line);
      if (row !== undefined) yield row;
      partial = "";
      tooLong = false;
      line++;
      start = end + 1;
    }
    if (!tooLong) partial += text.slice(start);
    if (partial.length > MANIFEST_LIMITS.maxRowChars) {
      tooLong = true;
      partial = "";
    }
  }
  const last = tooLong ? tooLongRow(line) : parseLine(partial, line);
  if (last !== undefined) yield last;
}

/** One line as a row; undefined for a blank line. */
function parseLine(text: string, line: number): RawRow | undefined {
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    const shown = detail.length > 120 ? `${detail.slice(0, 120)}...` : detail;
    return {
      line,
      fields: {},
      problem: { field: "row", message: `expected a JSON object, found malformed JSON (${shown})` },
    };
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    // JSON.parse kept the last of a key given twice: which one the user meant is theirs to say.
    const repeated = repeatedTopLevelKey(text);
    if (repeated !== undefined)
      return { line, fields: {}, problem: { field: repeated, message: "given twice in the row: keep one" } };
    return { line, fields: value as Record<string, unknown>, chars: text.length };
  }
  return {
    line,
    fields: {},
    problem: { field: "row", message: `expected a JSON object, found ${describeValue(value)}` },
  };
}

function tooLongRow(line: number): RawRow {
  return {
    line,
    fields: {},
    problem: {
      field: "row",
      message: `expected a line of at most ${MANIFEST_LIMITS.maxRowChars} characters, found a longer one`,
    },
  };
}
