import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRowValidator,
  formatRowError,
  ManifestParseError,
  openManifest,
  readJsonDefaults,
  readJsonRows,
  validateRow,
} from "../../src/manifest/index.js";
import { JsonSyntaxError, type JsonToken, JsonTokenizer } from "../../src/manifest/json-tokenizer.js";
import { collect, type TempFiles, tempFiles, thrown } from "../fixtures/manifest/temp-files.js";

let files: TempFiles;
beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await files.cleanup();
});

async function rowsOf(content: string, name = "m.json") {
  const path = await files.write(name, content);
  return collect(readJsonRows(path, name));
}

async function parseErrorOf(content: string, name = "bad.json"): Promise<ManifestParseError> {
  const path = await files.write(name, content);
  const error = await thrown(async () => {
    await readJsonDefaults(path, name);
    await collect(readJsonRows(path, name));
  });
  expect(error).toBeInstanceOf(ManifestParseError);
  return error as ManifestParseError;
}

describe("JSON reader: shapes and line numbers", () => {
  it("reads a top-level array, each row on the line of its opening brace, with its length in characters", async () => {
    const rows = await rowsOf(
      '[{"prompt": "first", "seed": 1},\n  {\n    "prompt": "second",\n    "nested": {"a": [1, 2, {"b": null}]}\n  },\n\n  {"prompt": "third", "safety_check": false}\n]\n',
    );
    expect(rows).toEqual([
      { line: 1, column: 2, fields: { prompt: "first", seed: 1 }, chars: 30 },
      { line: 2, column: 3, fields: { prompt: "second", nested: { a: [1, 2, { b: null }] } }, chars: 70 },
      { line: 7, column: 3, fields: { prompt: "third", safety_check: false }, chars: 42 },
    ]);
  });

  it("a row error of a minified manifest (one line) names the row's column", async () => {
    const rows = Array.from({ length: 6 }, (_, i) => ({
      id: `r${i + 1}`,
      prompt: "p",
      seed: i === 3 ? "x" : i,
    }));
    const path = await files.write("mini.json", JSON.stringify(rows));
    const errors: string[] = [];
    for await (const raw of readJsonRows(path, "mini.json")) {
      const result = validateRow(raw, { file: "mini.json" });
      if (!result.ok) errors.push(...result.errors.map(formatRowError));
    }
    const at = JSON.stringify(rows).indexOf('{"id":"r4"') + 1;
    expect(errors).toEqual([`mini.json:1:${at}: seed: expected an integer from 0 to 4294967295, found "x"`]);
  });

  it("reads an empty array and a BOM", async () => {
    expect(await rowsOf("\uFEFF[ ]")).toEqual([]);
  });

  it("decodes escapes, including a surrogate pair", async () => {
    const rows = await rowsOf('[{"prompt": "tab\\there \\"q\\" \\\\ \\/ \\u00e9 \\ud83d\\ude00 \\n"}]');
    expect(rows[0]?.fields.prompt).toBe('tab\there "q" \\ / é 😀 \n');
  });

  it("keeps number values as numbers, 1e3 included", async () => {
    const rows = await rowsOf('[{"prompt": "p", "seed": 1e3, "guidance_scale": -0.5E-1, "n": 0}]');
    expect(rows[0]?.fields).toEqual({ prompt: "p", seed: 1000, guidance_scale: -0.05, n: 0 });
  });

  it("keeps a __proto__ key as an ordinary field", async () => {
    const rows = await rowsOf('[{"prompt": "p", "__proto__": "meta"}]');
    expect(Object.hasOwn(rows[0]!.fields, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(rows[0]!.fields)).toBe(Object.prototype);
  });

  it("an element that is not an object is a problem for that row only", async () => {
    const rows = await rowsOf('[\n"just text",\n[1],\n{"prompt": "ok"}\n]');
    expect(rows.map((r) => [r.line, r.problem?.message ?? "ok"])).toEqual([
      [2, 'expected an object, found "just text"'],
      [3, "expected an object, found a list"],
      [4, "ok"],
    ]);
  });

  it("a key given twice in a row is a problem of that row, named, with both lines (not the last value kept unseen)", async () => {
    const rows = await rowsOf(
      '[\n{"prompt": "a", "seed": 1},\n{"prompt": "a vase",\n "seed": 1,\n "seed": 2},\n{"prompt": "c", "meta": {"x": 1, "x": 2}}\n]',
    );
    expect(rows.map((r) => [r.line, r.problem ?? "ok"])).toEqual([
      [2, "ok"],
      [3, { field: "seed", message: "given twice in the row (its second value starts on line 5): keep one" }],
      // Inside a nested value (kept as JSON text in metadata) the last one stands, as JSON.parse does.
      [6, "ok"],
    ]);
  });

  it("a key given twice in the file's defaults refuses the file, naming it (every row would get the last value)", async () => {
    const error = await parseErrorOf(
      '{"defaults": {"model": "edit",\n "model": "image-to-image"},\n "rows": [{"prompt": "a"}]}',
    );
    expect(error).toMatchObject({ code: "defaults", line: 2 });
    expect(error.message).toContain('"defaults" gives "model" twice (the object starts on line 1): keep one');
  });

  it("numbers rows right across many read chunks", async () => {
    const parts: string[] = ["{\n", '"rows": [\n'];
    const expected: number[] = [];
    let line = 3;
    for (let i = 0; i < 20_000; i++) {
      const pretty = i % 5 === 0;
      const row = pretty
        ? `  {\n    "prompt": "ünïcode ${i} 🙂",\n    "seed": ${i}\n  }`
        : `  {"prompt": "p${i}"}`;
      expected.push(line);
      parts.push(`${row}${i < 19_999 ? "," : ""}\n`);
      line += row.split("\n").length;
    }
    parts.push("],\n", '"defaults": {"seed": 5}\n}\n');
    const path = await files.write("many.json", parts.join(""));
    const rows = await collect(readJsonRows(path, "many.json"));
    expect(rows.map((r) => r.line)).toEqual(expected);
    expect(await readJsonDefaults(path, "many.json")).toEqual({ defaults: { seed: 5 }, line: line + 1 });
  });
});

describe("JSON reader: defaults before or after the rows", () => {
  const rowsFirst =
    '{\n  "rows": [\n    {"prompt": "a"},\n    {"prompt": "b", "seed": 9}\n  ],\n  "defaults": {"seed": 1, "acceleration": "high"}\n}\n';
  const defaultsFirst =
    '{\n  "defaults": {"seed": 1, "acceleration": "high"},\n  "rows": [\n    {"prompt": "a"},\n    {"prompt": "b", "seed": 9}\n  ]\n}\n';

  it.each([
    ["before", defaultsFirst, 2, [4, 5]],
    ["after", rowsFirst, 6, [3, 4]],
  ])("defaults %s the rows apply to every row", async (_order, content, defaultsLine, lines) => {
    const path = await files.write("defaults.json", content);
    const manifest = await openManifest(path);
    expect(manifest.defaults).toEqual({ seed: 1, acceleration: "high" });
    expect(manifest.defaultsLine).toBe(defaultsLine);
    const validate = createRowValidator({ file: manifest.file, defaults: manifest.defaults });
    const results = (await collect(manifest.rows())).map(validate);
    expect(results.map((r) => (r.ok ? [r.row.line, r.row.params] : r.errors))).toEqual([
      [lines[0], { prompt: "a", seed: 1, acceleration_level: "high" }],
      [lines[1], { prompt: "b", seed: 9, acceleration_level: "high" }],
    ]);
  });

  it("an object with rows only, or defaults only, is fine", async () => {
    expect(await rowsOf('{"rows": [{"prompt": "a"}]}')).toEqual([
      { line: 1, column: 11, fields: { prompt: "a" }, chars: 15 },
    ]);
    const path = await files.write("only-defaults.json", '{"defaults": {"seed": 3}}');
    expect(await readJsonDefaults(path, "x")).toEqual({ defaults: { seed: 3 }, line: 1 });
  });

  it("an array has no defaults, and reading them stops at the first byte", async () => {
    // the file is malformed after the "[": the defaults pass does not read that far
    const path = await files.write("array.json", "[ {oops");
    expect(await readJsonDefaults(path, "array.json")).toEqual({ defaults: {}, line: undefined });
  });
});

describe("JSON reader: malformed files name line and column", () => {
  it.each([
    ["a trailing comma in a row", '[\n  {"prompt": "a",}\n]', 2, 18, "expected a property name"],
    ["a trailing comma in the array", '[{"prompt": "a"},\n]', 2, 1, "expected a value"],
    ["a missing colon", '[{"prompt" "a"}]', 1, 12, 'expected ":"'],
    ["a missing comma", '[{"prompt": "a"}\n {"prompt": "b"}]', 2, 2, 'expected "," or "]"'],
    ["single quotes", "[{'prompt': 'a'}]", 1, 3, "unexpected character"],
    ["an unquoted word", "[{prompt: 1}]", 1, 3, "unexpected text"],
    ["NaN", '[{"seed": NaN}]', 1, 11, "unexpected text"],
    ["a leading zero", '[{"seed": 01}]', 1, 11, "unexpected text"],
    ["a raw newline in a string", '[{"prompt": "a\nb"}]', 1, 15, "inside a string"],
    ["a bad escape", '[{"prompt": "a\\qb"}]', 1, 16, "invalid escape"],
    ["a bad unicode escape", '[{"prompt": "\\u12G4"}]', 1, 18, "hex digit"],
    ["an unterminated string", '[{"prompt": "abc}]', 1, 13, "ends inside a string"],
    ["a truncated file", '[{"prompt": "a"},\n {"prompt": "b"}', 2, 17, "ends before the JSON is complete"],
    ["text after the end", '[{"prompt": "a"}]\n]', 2, 1, "after the end"],
    ["columns counted in characters, not UTF-16 units", '[{"prompt": "🙂🙂", x}]', 1, 19, "unexpected"],
  ])("%s", async (_name, content, line, column, reason) => {
    const error = await parseErrorOf(content);
    expect(error.code).toBe("syntax");
    expect([error.line, error.column]).toEqual([line, column]);
    expect(error.reason).toContain(reason);
    expect(error.message).toMatch(new RegExp(`^bad\\.json:${line}:${column}: not valid JSON: `));
  });

  it.each([
    ["a scalar at the top", '"rows"', "expected an array of rows"],
    ["an unknown top-level key", '{"row": []}', 'expected the key "defaults" or "rows"'],
    ["a key given twice", '{"rows": [], "rows": []}', "appears twice"],
    ["rows that are not an array", '{"rows": {"prompt": "a"}}', '"rows" to be an array'],
    ["defaults that are not an object", '{"defaults": [1], "rows": []}', '"defaults" to be an object'],
    ["an empty file", "  \n", "the file is empty"],
  ])("refuses %s", async (_name, content, reason) => {
    const error = await parseErrorOf(content);
    expect(error.code).toBe("structure");
    expect(error.reason).toContain(reason);
  });

  it("a row object past the row limit is refused at its first line", async () => {
    const big = Array.from({ length: 200 }, (_, i) => `"k${i}": "${"x".repeat(6000)}"`).join(", ");
    const error = await parseErrorOf(`[{"prompt": "a"},\n\n {"prompt": "b", ${big}}]`);
    expect(error.code).toBe("too-large");
    expect([error.line, error.column]).toEqual([3, 2]);
  });

  it("openManifest fails early when the shape is wrong", async () => {
    const path = await files.write("shape.json", '{"prompts": []}');
    expect(await thrown(() => openManifest(path))).toBeInstanceOf(ManifestParseError);
  });

  it("with rows before defaults, openManifest reads the whole file and finds a late syntax error", async () => {
    const path = await files.write("late.json", '{"rows": [{"prompt": "a"}\n,, ], "defaults": {}}');
    const error = await thrown(() => openManifest(path));
    expect((error as ManifestParseError).line).toBe(2);
  });

  it("rows before a syntax error are read first", async () => {
    const path = await files.write("partial.json", '[{"prompt": "a"},\n{"prompt": "b"},\n{"prompt": ]');
    const seen: number[] = [];
    const error = await thrown(async () => {
      for await (const row of readJsonRows(path, "partial.json")) seen.push(row.line);
    });
    expect(seen).toEqual([1, 2]);
    expect((error as ManifestParseError).line).toBe(3);
  });
});

describe("JSON tokenizer", () => {
  function tokens(chunks: string[]): JsonToken[] {
    const out: JsonToken[] = [];
    const tokenizer = new JsonTokenizer((token) => out.push(token));
    for (const chunk of chunks) tokenizer.write(chunk);
    tokenizer.end();
    return out;
  }

  it("gives the same tokens whatever the chunking, down to one character at a time", () => {
    const text = '{"a\\u00e9\\n": [1.5e-3, -0, true, false, null, "😀x\\"y"],\r\n "b": {}}';
    const whole = tokens([text]);
    expect(tokens([...text])).toEqual(whole);
    expect(tokens([text.slice(0, 7), text.slice(7, 8), text.slice(8)])).toEqual(whole);
    expect(whole.map((t) => ("value" in t ? String(t.value) : t.type)).join(" ")).toBe(
      '{ aé\n : [ 0.0015 , 0 , true , false , null , 😀x"y ] , b : { } }',
    );
    expect(whole.find((t) => "value" in t && t.value === "b")).toMatchObject({ line: 2, column: 2 });
  });

  it("refuses a string longer than the row limit", () => {
    const tokenizer = new JsonTokenizer(() => {});
    tokenizer.write('"');
    const chunk = "x".repeat(100_000);
    expect(() => {
      for (let i = 0; i < 11; i++) tokenizer.write(chunk);
    }).toThrow(JsonSyntaxError);
  });
});
