/**
 * Strict value rules, shared by every field: no coercion beyond what is written here. A CSV cell
 * is always a string; a JSON value may also be a number or a boolean. An empty string and JSON
 * null mean "not given" (`isGiven`). Each parser returns the value or a message saying what was
 * expected and what was found.
 */

/** Plain decimal notation: "7", "-3", "7.50". Not "1e3", "0x10", ".5", "7.", " 7". */
const DECIMAL_RE = /^-?\d+(\.\d+)?$/;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  false: false,
  yes: true,
  no: false,
  "1": true,
  "0": false,
};

/** An empty cell or a JSON null is "not given": the next layer of precedence applies. */
export function isGiven(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

/** How a found value is shown in a message: strings quoted (and cut at 40 characters), others by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    if (value === "") return "an empty value";
    if (value.trim() === "") return `only whitespace (${JSON.stringify(value)})`;
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  }
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return String(value);
}

export interface NumberSpec {
  min: number;
  max: number;
  integer: boolean;
}

/** A JSON number, or a string in plain decimal notation, within [min, max] (and whole if `integer`). */
export function parseNumber(input: unknown, spec: NumberSpec): Parsed<number> {
  const expected = `expected ${spec.integer ? "an integer" : "a number"} from ${spec.min} to ${spec.max}`;
  let value: number | undefined;
  if (typeof input === "number") value = input;
  else if (typeof input === "string" && DECIMAL_RE.test(input)) value = Number(input);
  if (value === undefined) {
    const hint =
      typeof input === "string" && input.trim() !== "" && Number.isFinite(Number(input))
        ? " (write plain decimal digits)"
        : "";
    return fail(`${expected}, found ${describeValue(input)}${hint}`);
  }
  if (!Number.isFinite(value) || value < spec.min || value > spec.max) {
    return fail(`${expected}, found ${describeValue(input)}`);
  }
  if (spec.integer && !Number.isInteger(value)) {
    return fail(`${expected}, found ${describeValue(input)} (not a whole number)`);
  }
  return { ok: true, value: value === 0 ? 0 : value }; // no -0
}

/** true/false, yes/no, 1/0 (strings, any case), or a JSON boolean, or the JSON numbers 1 and 0. */
export function parseBoolean(input: unknown): Parsed<boolean> {
  if (typeof input === "boolean") return { ok: true, value: input };
  const key =
    typeof input === "string" ? input.toLowerCase() : typeof input === "number" ? String(input) : "";
  const value = BOOLEAN_WORDS[key];
  if (value === undefined) return fail(`expected true/false, yes/no or 1/0, found ${describeValue(input)}`);
  return { ok: true, value };
}

/** One of `allowed` (any case), or a value `aliases` maps to one. */
export function parseEnum<T extends string>(
  input: unknown,
  allowed: readonly T[],
  aliases: Readonly<Record<string, T>> = {},
): Parsed<T> {
  if (typeof input === "string") {
    const word = input.toLowerCase();
    const value = (allowed as readonly string[]).includes(word) ? (word as T) : aliases[word];
    if (value !== undefined) return { ok: true, value };
  }
  return fail(`expected one of ${allowed.join(", ")}, found ${describeValue(input)}`);
}

export interface TextSpec {
  /** Most characters (code points) after trimming. */
  max: number;
  /** If true, text that is empty after trimming is an error; otherwise it means "not given". */
  required: boolean;
}

/** Text, trimmed, measured in characters (code points, so an emoji counts once). */
export function parseText(input: unknown, spec: TextSpec): Parsed<string | undefined> {
  if (typeof input !== "string") {
    return fail(
      `expected text of ${spec.required ? "1" : "0"} to ${spec.max} characters, found ${describeValue(input)}`,
    );
  }
  const value = input.trim();
  if (value === "") {
    return spec.required
      ? fail(`expected text of 1 to ${spec.max} characters, found ${describeValue(input)}`)
      : { ok: true, value: undefined };
  }
  const length = countCodePoints(value);
  if (length > spec.max) return fail(`expected at most ${spec.max} characters, found ${length}`);
  // Positions are counted in the cell as written (before trimming), as an editor shows it.
  const lead = input.length - input.trimStart().length;
  const at = (index: number) => countCodePoints(input.slice(0, lead + index)) + 1;
  const control = CONTROL.exec(value);
  if (control) {
    const code = control[0].codePointAt(0)!;
    return fail(
      `expected text without control characters (tab and line breaks are fine), found U+${code.toString(16).toUpperCase().padStart(4, "0")} at character ${at(control.index)}`,
    );
  }
  const lone = LONE_SURROGATE.exec(value);
  if (lone) {
    return fail(
      `expected text without a lone UTF-16 surrogate (a broken \\u escape), found one at character ${at(lone.index)}`,
    );
  }
  return { ok: true, value };
}

/**
 * C0 and C1 control characters and DEL, but tab, line feed and carriage return: a NUL or an escape
 * sequence in a prompt is a broken file or export, never text a model should get.
 */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/u;
/** A surrogate half without its pair (only JSON's `\ud800` escapes make one): not UTF-8 text. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Longest input image URL or path accepted. */
const MAX_LOCATION_CHARS = 4096;

/** An absolute http(s) URL (an input image KIE fetches): other schemes and relative URLs are refused. */
export function parseHttpUrl(input: unknown): Parsed<string> {
  const expected = "expected an http(s) URL";
  if (typeof input !== "string") return fail(`${expected}, found ${describeValue(input)}`);
  const text = input.trim();
  if (text.length > MAX_LOCATION_CHARS)
    return fail(`${expected} of at most ${MAX_LOCATION_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`${expected}, found ${describeValue(input)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(`${expected}, found ${describeValue(input)}`);
  }
  if (url.username !== "" || url.password !== "") {
    return fail(`${expected} without a user name or password in it`);
  }
  return { ok: true, value: text };
}

/** A local file path as written (checked against the disk later). */
export function parsePath(input: unknown): Parsed<string> {
  if (
    typeof input !== "string" ||
    input.trim() === "" ||
    input.length > MAX_LOCATION_CHARS ||
    input.includes("\0")
  ) {
    return fail(`expected a file path, found ${describeValue(input)}`);
  }
  return { ok: true, value: input.trim() };
}

/**
 * A row id: 1..128 of `A-Z a-z 0-9 . _ -`, not starting with a dot (the archive names its own
 * files `.<name>.tmp` and `.<name>.meta.json`: a row `.x.meta` would have its image paid for and
 * its sidecar refused; and "." and ".." are no names). A JSON whole number is taken as its digits.
 */
const ROW_ID_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function parseRowId(input: unknown): Parsed<string> {
  const value =
    typeof input === "string"
      ? input
      : Number.isSafeInteger(input) && (input as number) >= 0
        ? String(input)
        : undefined;
  if (value === undefined || !ROW_ID_RE.test(value)) {
    return fail(
      `expected 1 to 128 characters from A-Z a-z 0-9 . _ - (not starting with "."), found ${describeValue(input)}`,
    );
  }
  return { ok: true, value };
}

/**
 * A metadata value as carried to results: strings as written, other JSON values as JSON. A value
 * nested too deeply for JSON.stringify (thousands of levels: the manifest's reader takes any
 * depth) is the row's error, not the whole file's crash.
 */
export function stringifyMetadata(value: unknown): Parsed<string> {
  if (typeof value === "string") return { ok: true, value };
  if (typeof value !== "object") return { ok: true, value: String(value) };
  try {
    return { ok: true, value: JSON.stringify(value) };
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return fail("a JSON value nested too deeply to keep (give it as a string)");
  }
}

function countCodePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0xdc00 || code > 0xdfff) count++;
  }
  return count;
}

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}
