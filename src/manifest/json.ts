/**
 * Streaming JSON manifest reader: `[ {row}, ... ]` or `{"defaults": {...}, "rows": [...]}` with
 * the keys in either order. Memory stays constant: rows are handed on one at a time.
 *
 * Defaults that come after the rows must still apply to every row, and buffering the rows until
 * the defaults show up would hold the whole file. So `readJsonDefaults` is a first pass that
 * stops as soon as it knows the defaults (at the first token for an array; at the defaults
 * themselves otherwise, which for "rows first" means reading to the end of the file), and
 * `readJsonRows` is a second pass. Both take a path: a caller reading stdin spools it to a
 * temporary file first.
 */

import { ManifestParseError } from "./errors.js";
import { type JsonManifestEvent, JsonManifestStructure } from "./json-structure.js";
import { JsonSyntaxError, JsonTokenizer } from "./json-tokenizer.js";
import type { RawRow } from "./types.js";
import { readUtf8Text } from "./utf8.js";
import { describeValue } from "./values.js";

export interface JsonDefaults {
  /** The file's `defaults` object; {} when it has none. */
  defaults: Record<string, unknown>;
  /** Line where the defaults object starts, when there is one. */
  line: number | undefined;
}

/** First pass: the file's defaults. Reads no further than it must. */
export async function readJsonDefaults(path: string, file: string): Promise<JsonDefaults> {
  for await (const event of readJsonEvents(path, file)) {
    if (event.kind === "shape" && event.shape === "array") break;
    if (event.kind === "defaults") {
      // Every row would get the last value unseen: the file is refused, naming the key.
      if (event.repeated) {
        throw new ManifestParseError({
          code: "defaults",
          file,
          line: event.repeated.line,
          reason: `"defaults" gives "${event.repeated.key}" twice (the object starts on line ${event.line}): keep one`,
        });
      }
      return { defaults: event.value, line: event.line };
    }
  }
  return { defaults: {}, line: undefined };
}

/**
 * Second pass: every row, with the line of its first token (the `{` of a row object). An array
 * element that is not an object becomes a row with a `problem`; malformed JSON throws
 * ManifestParseError with line and column, after the rows before it.
 */
export async function* readJsonRows(path: string, file: string): AsyncGenerator<RawRow> {
  for await (const event of readJsonEvents(path, file)) {
    if (event.kind !== "row") continue;
    // The column too: a minified manifest (JSON.stringify, jq -c) is one line of a million rows.
    const { value, line, column, chars, repeated } = event;
    if (repeated) {
      // JSON.parse would keep the last value unseen: which one the user meant is theirs to say.
      yield {
        line,
        column,
        fields: {},
        problem: {
          field: repeated.key,
          message: `given twice in the row (its second value starts on line ${repeated.line}): keep one`,
        },
      };
    } else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      yield { line, column, fields: value as Record<string, unknown>, chars };
    } else {
      yield {
        line,
        column,
        fields: {},
        problem: { field: "row", message: `expected an object, found ${describeValue(value)}` },
      };
    }
  }
}

/** The file as manifest events, chunk by chunk; events before a syntax error are handed on first. */
async function* readJsonEvents(path: string, file: string): AsyncGenerator<JsonManifestEvent> {
  const events: JsonManifestEvent[] = [];
  const structure = new JsonManifestStructure((event) => events.push(event));
  const tokenizer = new JsonTokenizer((token) => structure.push(token));
  try {
    for await (const text of readUtf8Text(path, file)) {
      let failure: unknown;
      try {
        tokenizer.write(text);
      } catch (error) {
        failure = error;
      }
      yield* events;
      events.length = 0;
      if (failure !== undefined) throw failure;
    }
    tokenizer.end();
    structure.end(tokenizer.position);
    yield* events;
  } catch (error) {
    if (error instanceof JsonSyntaxError) {
      throw new ManifestParseError({
        code: error.code,
        file,
        line: error.line,
        column: error.column,
        reason: error.code === "syntax" ? `not valid JSON: ${error.reason}` : error.reason,
      });
    }
    throw error;
  }
}
