/**
 * A push tokenizer for JSON text that arrives in chunks: `write(chunk)` hands each complete
 * token to `onToken`, keeping a token that straddles two chunks until it ends. Every token
 * carries the line and column (1-based, in characters) of its first character, and its offset
 * in characters from the start of the text. Errors throw JsonSyntaxError with the position.
 */

import { MANIFEST_LIMITS } from "./types.js";

type JsonPunctuation = "{" | "}" | "[" | "]" | ":" | ",";

export type JsonToken =
  | { type: JsonPunctuation; line: number; column: number; offset: number }
  | { type: "string"; value: string; line: number; column: number; offset: number }
  | { type: "scalar"; value: number | boolean | null; line: number; column: number; offset: number };

/** Malformed JSON at a position; the reader turns it into a ManifestParseError naming the file. */
export class JsonSyntaxError extends Error {
  override readonly name = "JsonSyntaxError";
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly column: number,
    readonly code: "syntax" | "structure" | "too-large" = "syntax",
  ) {
    super(`${line}:${column}: ${reason}`);
  }
}

const NUMBER_RE = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const BARE_CHAR_RE = /[0-9A-Za-z+\-.]/;
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};
const PUNCTUATION = new Set<string>(["{", "}", "[", "]", ":", ","]);

type Mode = "between" | "string" | "escape" | "unicode" | "bare";

export class JsonTokenizer {
  private mode: Mode = "between";
  private line = 1;
  private column = 1;
  private offset = 0;
  /** Text of the token in progress (string contents so far, or a bare word). */
  private text = "";
  private hex = "";
  private start = { line: 1, column: 1, offset: 0 };

  constructor(private readonly onToken: (token: JsonToken) => void) {}

  write(chunk: string): void {
    let runStart = 0; // start of the current run of plain string characters in `chunk`
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      const code = chunk.charCodeAt(i);
      switch (this.mode) {
        case "between":
          if (ch === '"') {
            this.begin("string");
            runStart = i + 1;
          } else if (PUNCTUATION.has(ch)) {
            this.onToken({ type: ch as JsonPunctuation, ...this.here() });
          } else if (BARE_CHAR_RE.test(ch)) {
            this.begin("bare");
            this.text = ch;
          } else if (ch !== " " && ch !== "\t" && ch !== "\n" && ch !== "\r") {
            this.fail(`unexpected character ${describeChar(ch)}`);
          }
          break;
        case "string":
          if (ch === '"' || ch === "\\") {
            this.text += chunk.slice(runStart, i);
            if (ch === '"') {
              this.onToken({ type: "string", value: this.text, ...this.start });
              this.mode = "between";
            } else {
              this.mode = "escape";
            }
          } else if (code < 0x20) {
            this.fail(`${describeChar(ch)} inside a string: write it as an escape (\\n, \\t)`);
          }
          break;
        case "escape":
          if (ch === "u") {
            this.mode = "unicode";
            this.hex = "";
          } else if (ESCAPES[ch] !== undefined) {
            this.text += ESCAPES[ch];
            this.mode = "string";
            runStart = i + 1;
          } else {
            this.fail(`invalid escape \\${ch} in a string`);
          }
          break;
        case "unicode":
          if (!/[0-9A-Fa-f]/.test(ch))
            this.fail(`invalid \\u escape: expected a hex digit, found ${describeChar(ch)}`);
          this.hex += ch;
          if (this.hex.length === 4) {
            this.text += String.fromCharCode(Number.parseInt(this.hex, 16));
            this.mode = "string";
            runStart = i + 1;
          }
          break;
        case "bare":
          if (BARE_CHAR_RE.test(ch)) {
            this.text += ch;
            if (this.text.length > 400) this.fail(`unexpected text ${describeText(this.text)}`, this.start);
          } else {
            this.finishBare();
            i--; // this character ends the word; look at it again between tokens
            continue;
          }
          break;
      }
      this.step(ch, code);
    }
    if (this.mode === "string") this.text += chunk.slice(runStart);
    if (
      (this.mode === "string" || this.mode === "escape") &&
      this.text.length > MANIFEST_LIMITS.maxRowChars
    ) {
      throw new JsonSyntaxError(
        `a string longer than ${MANIFEST_LIMITS.maxRowChars} characters`,
        this.start.line,
        this.start.column,
        "too-large",
      );
    }
  }

  /** Where the next character would be: the end of the text, once `end` is called. */
  get position(): { line: number; column: number } {
    return { line: this.line, column: this.column };
  }

  /** Ends the text: a token still open is completed or reported. */
  end(): void {
    if (this.mode === "bare") this.finishBare();
    if (this.mode !== "between")
      this.fail("the file ends inside a string (a missing closing quote?)", this.start);
  }

  private begin(mode: Mode): void {
    this.mode = mode;
    this.text = "";
    this.start = this.here();
  }

  private here(): { line: number; column: number; offset: number } {
    return { line: this.line, column: this.column, offset: this.offset };
  }

  private step(ch: string, code: number): void {
    this.offset++;
    if (ch === "\n") {
      this.line++;
      this.column = 1;
    } else if (code < 0xdc00 || code > 0xdfff) {
      // the second half of a surrogate pair is the same character as the first
      this.column++;
    }
  }

  private finishBare(): void {
    const word = this.text;
    this.mode = "between";
    let value: number | boolean | null;
    if (word === "true") value = true;
    else if (word === "false") value = false;
    else if (word === "null") value = null;
    else if (NUMBER_RE.test(word)) value = Number(word);
    else this.fail(`unexpected text ${describeText(word)} (strings need double quotes)`, this.start);
    this.onToken({ type: "scalar", value, ...this.start });
  }

  private fail(reason: string, at: { line: number; column: number } = this.here()): never {
    throw new JsonSyntaxError(reason, at.line, at.column);
  }
}

function describeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code < 0x20 || code === 0x7f)
    return `control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return JSON.stringify(ch);
}

function describeText(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}
