/**
 * Turns JSON tokens into manifest events, for either top-level shape:
 *   [ {row}, {row}, ... ]
 *   { "defaults": {...}, "rows": [ {row}, ... ] }   (keys in either order; both optional)
 * Each row value is built (a row is small) and handed on with the line of its first token;
 * the rows array itself is never held, so memory stays constant whatever the row count.
 */

import { JsonSyntaxError, type JsonToken } from "./json-tokenizer.js";
import { MANIFEST_LIMITS, setOwn } from "./types.js";

export type JsonManifestEvent =
  | { kind: "shape"; shape: "array" | "object" }
  | { kind: "key"; key: "defaults" | "rows" }
  | { kind: "defaults"; value: Record<string, unknown>; line: number; repeated?: RepeatedKey }
  /** `repeated`: the first key the object gave twice, and the line where its second value starts. */
  | { kind: "row"; value: unknown; line: number; column: number; chars: number; repeated?: RepeatedKey };

/** A key an object gives twice (JSON.parse keeps the last: the reader says so instead). */
export interface RepeatedKey {
  key: string;
  line: number;
}

interface Position {
  line: number;
  column: number;
  offset: number;
}

type Frame =
  | {
      kind: "object";
      role: "root" | "value";
      value: Record<string, unknown>;
      state: ObjectState;
      key: string;
      start: Position;
      repeated?: RepeatedKey;
    }
  | { kind: "array"; role: "rows" | "value"; value: unknown[]; state: ArrayState; start: Position };
type ObjectState = "first" | "key" | "colon" | "value" | "next";
type ArrayState = "first" | "value" | "next";

const ROOT_KEYS = new Set(["defaults", "rows"]);

export class JsonManifestStructure {
  private readonly stack: Frame[] = [];
  private done = false;
  private started = false;
  /** Where the row (or defaults) being built starts, to bound its size. */
  private valueStart: Position | undefined;
  /** The offset of the token being pushed (a row's last, when it completes the row). */
  private tokenOffset = 0;
  private readonly rootKeys = new Set<string>();

  constructor(private readonly emit: (event: JsonManifestEvent) => void) {}

  push(token: JsonToken): void {
    this.started = true;
    this.tokenOffset = token.offset;
    const start = this.valueStart;
    if (start !== undefined && token.offset - start.offset > MANIFEST_LIMITS.maxRowChars) {
      throw new JsonSyntaxError(
        `the value starting here is longer than ${MANIFEST_LIMITS.maxRowChars} characters`,
        start.line,
        start.column,
        "too-large",
      );
    }
    const top = this.stack.at(-1);
    if (top === undefined) this.pushTopLevel(token);
    else if (top.kind === "object") this.pushInObject(top, token);
    else if (top.state === "next") {
      if (token.type === ",") top.state = "value";
      else if (token.type === "]") this.close();
      else fail(`expected "," or "]" after a list item, found ${describeToken(token)}`, token);
    } else if (token.type === "]" && top.state === "first") {
      this.close();
    } else {
      this.beginValue(top, token);
    }
  }

  /** Called after the last token, with the position just past the text. */
  end(at: { line: number; column: number }): void {
    if (!this.started)
      throw new JsonSyntaxError("the file is empty: expected an array of rows", 1, 1, "structure");
    if (!this.done) {
      throw new JsonSyntaxError(
        "the file ends before the JSON is complete (a missing ] or }?)",
        at.line,
        at.column,
      );
    }
  }

  private pushTopLevel(token: JsonToken): void {
    if (this.done) fail(`unexpected ${describeToken(token)} after the end of the JSON`, token);
    if (token.type === "[") {
      this.stack.push({ kind: "array", role: "rows", value: [], state: "first", start: token });
      this.emit({ kind: "shape", shape: "array" });
    } else if (token.type === "{") {
      this.stack.push({ kind: "object", role: "root", value: {}, state: "first", key: "", start: token });
      this.emit({ kind: "shape", shape: "object" });
    } else {
      fail(
        `expected an array of rows or an object {"defaults": {...}, "rows": [...]}, found ${describeToken(token)}`,
        token,
        "structure",
      );
    }
  }

  private pushInObject(top: Frame & { kind: "object" }, token: JsonToken): void {
    switch (top.state) {
      case "first":
      case "key":
        if (token.type === "}" && top.state === "first") {
          this.close();
          return;
        }
        if (token.type !== "string") {
          fail(`expected a property name in double quotes, found ${describeToken(token)}`, token);
        }
        if (top.role === "root") this.rootKey(token.value, token);
        top.key = token.value;
        top.state = "colon";
        return;
      case "colon":
        if (token.type !== ":")
          fail(`expected ":" after a property name, found ${describeToken(token)}`, token);
        top.state = "value";
        return;
      case "value":
        this.beginValue(top, token);
        return;
      case "next":
        if (token.type === ",") top.state = "key";
        else if (token.type === "}") this.close();
        else fail(`expected "," or "}" after a property, found ${describeToken(token)}`, token);
    }
  }

  private rootKey(key: string, at: Position): void {
    if (!ROOT_KEYS.has(key)) {
      fail(
        `expected the key "defaults" or "rows" at the top level, found ${JSON.stringify(key)}`,
        at,
        "structure",
      );
    }
    if (this.rootKeys.has(key)) fail(`"${key}" appears twice at the top level`, at, "structure");
    this.rootKeys.add(key);
    this.emit({ kind: "key", key: key as "defaults" | "rows" });
  }

  private beginValue(parent: Frame, token: JsonToken): void {
    const rootKey = parent.kind === "object" && parent.role === "root" ? parent.key : undefined;
    if (rootKey === "rows" && token.type !== "[") {
      fail(
        `expected "rows" to be an array of row objects, found ${describeToken(token)}`,
        token,
        "structure",
      );
    }
    if (rootKey === "defaults" && token.type !== "{") {
      fail(`expected "defaults" to be an object, found ${describeToken(token)}`, token, "structure");
    }
    if (rootKey === "defaults" || (parent.kind === "array" && parent.role === "rows"))
      this.valueStart = token;
    switch (token.type) {
      case "{":
        this.stack.push({ kind: "object", role: "value", value: {}, state: "first", key: "", start: token });
        return;
      case "[":
        this.stack.push({
          kind: "array",
          role: rootKey === "rows" ? "rows" : "value",
          value: [],
          state: "first",
          start: token,
        });
        return;
      case "string":
      case "scalar":
        this.complete(parent, token.value, token);
        return;
      default:
        fail(`expected a value, found ${describeToken(token)}`, token);
    }
  }

  private close(): void {
    const frame = this.stack.pop()!;
    const parent = this.stack.at(-1);
    if (parent === undefined) {
      this.done = true;
      return;
    }
    this.complete(parent, frame.value, frame.start, frame.kind === "object" ? frame.repeated : undefined);
  }

  private complete(parent: Frame, value: unknown, at: Position, repeated?: RepeatedKey): void {
    if (parent.kind === "array") {
      if (parent.role === "rows") {
        this.emit({
          kind: "row",
          value,
          line: at.line,
          column: at.column,
          chars: this.tokenOffset - at.offset + 1,
          ...(repeated ? { repeated } : {}),
        });
        this.valueStart = undefined;
      } else {
        parent.value.push(value);
      }
      parent.state = "next";
      return;
    }
    if (parent.role === "root") {
      if (parent.key === "defaults") {
        const defaults = value as Record<string, unknown>;
        this.emit({ kind: "defaults", value: defaults, line: at.line, ...(repeated ? { repeated } : {}) });
        this.valueStart = undefined;
      }
    } else {
      if (Object.hasOwn(parent.value, parent.key)) parent.repeated ??= { key: parent.key, line: at.line };
      setOwn(parent.value, parent.key, value);
    }
    parent.state = "next";
  }
}

function fail(reason: string, at: { line: number; column: number }, code?: "structure"): never {
  throw new JsonSyntaxError(reason, at.line, at.column, code);
}

function describeToken(token: JsonToken): string {
  if (token.type === "string") return `the string ${JSON.stringify(token.value.slice(0, 40))}`;
  if (token.type === "scalar") return String(token.value);
  return `"${token.type}"`;
}
