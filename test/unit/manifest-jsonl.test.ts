import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRowValidator,
  formatRowError,
  ManifestParseError,
  openManifest,
  readJsonlRows,
} from "../../src/manifest/index.js";
import { repeatedTopLevelKey } from "../../src/manifest/repeated-key.js";
import { collect, type TempFiles, tempFiles, thrown } from "../fixtures/manifest/temp-files.js";

let files: TempFiles;
beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await files.cleanup();
});

async function rowsOf(content: string | Uint8Array, name = "m.jsonl") {
  const path = await files.write(name, content);
  return collect(readJsonlRows(path, name));
}

describe("JSONL reader", () => {
  it("reads one object per line, skipping blank lines, with exact line numbers and lengths", async () => {
    const rows = await rowsOf('{"prompt": "a"}\n\n   \n{"prompt": "b", "seed": 2}\n\t\n{"prompt": "c"}');
    expect(rows).toEqual([
      { line: 1, fields: { prompt: "a" }, chars: 15 },
      { line: 4, fields: { prompt: "b", seed: 2 }, chars: 26 },
      { line: 6, fields: { prompt: "c" }, chars: 15 },
    ]);
  });

  it("reads CRLF line ends and a BOM", async () => {
    const rows = await rowsOf('\uFEFF{"prompt": "a"}\r\n\r\n{"prompt": "b"}\r\n');
    expect(rows.map((r) => [r.line, r.fields.prompt])).toEqual([
      [1, "a"],
      [3, "b"],
    ]);
  });

  it("a malformed line is an error for that row only; the next rows are still read", async () => {
    const rows = await rowsOf('{"prompt": "a"}\n{"prompt": "b",}\n{"prompt": "c"}\n');
    expect(rows.map((r) => [r.line, r.problem === undefined])).toEqual([
      [1, true],
      [2, false],
      [3, true],
    ]);
    expect(rows[1]?.problem?.message).toMatch(/^expected a JSON object, found malformed JSON \(/);
  });

  it.each([
    ["a list", "[1, 2]", "expected a JSON object, found a list"],
    ["a string", '"a cat"', 'expected a JSON object, found "a cat"'],
    ["a number", "42", "expected a JSON object, found 42"],
    ["null", "null", "expected a JSON object, found null"],
  ])("a line holding %s is a row error", async (_name, line, message) => {
    const rows = await rowsOf(`${line}\n`);
    expect(rows).toEqual([{ line: 1, fields: {}, problem: { field: "row", message } }]);
  });

  it("a line that gives a key twice is that row's error, naming the key; the other rows are read", async () => {
    const rows = await rowsOf(
      [
        '{"prompt": "a", "seed": 1, "prompt": "b"}',
        '{"id": "x", "prompt": "c"}',
        // Written with an escape, the same key: JSON.parse reads both as "prompt".
        '{"prompt": "d", "pro\\u006dpt": "e"}',
        // Keys inside values, nested objects and strings holding quotes and commas are not the row's.
        '{"prompt": "say \\"seed\\", twice", "params": {"seed": 1}, "meta": [{"seed": 2}, {"seed": 3}], "seed": 4}',
        '{"params": {"a": 1, "a": 2}, "prompt": "f"}',
      ].join("\n"),
    );
    expect(rows.map((r) => [r.line, r.problem])).toEqual([
      [1, { field: "prompt", message: "given twice in the row: keep one" }],
      [2, undefined],
      [3, { field: "prompt", message: "given twice in the row: keep one" }],
      [4, undefined],
      // As the JSON reader: only the row's own keys (a nested object's are its value's business).
      [5, undefined],
    ]);
    expect(rows[1]?.fields).toEqual({ id: "x", prompt: "c" });
    expect(rows[3]?.fields).toMatchObject({ prompt: 'say "seed", twice', seed: 4 });
  });

  it("finds a key given twice wherever it is, and none in what JSON.stringify writes (random rows)", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    const keys = ["id", "prompt", "seed", "a,b", 'q"t', "x\\y", "ü", ""];
    const values = [1, "v", 'a "quoted", value', ["[", "{"], { prompt: 1, "}": "{" }, null, true, "\\"];
    for (let n = 0; n < 2_000; n++) {
      const row: Record<string, unknown> = {};
      for (let k = Math.floor(random() * 5); k > 0; k--) row[pick(keys)] = pick(values);
      const text = JSON.stringify(row, null, random() < 0.5 ? 0 : 1);
      expect(repeatedTopLevelKey(text), text).toBeUndefined();
      const names = Object.keys(row);
      if (names.length === 0) continue;
      const again = pick(names);
      const twice = `${text.slice(0, -1)}, ${JSON.stringify(again)}: ${JSON.stringify(pick(values))}}`;
      expect(repeatedTopLevelKey(twice), twice).toBe(again);
    }
    expect(repeatedTopLevelKey("[1, 2]")).toBeUndefined();
    expect(repeatedTopLevelKey('"a"')).toBeUndefined();
  });

  it("a file that is not JSONL at all gives an error on each non-blank line", async () => {
    const path = await files.write("actually.jsonl", "prompt,seed\na cat,1\n\na dog,2\n");
    const validate = createRowValidator({ file: "actually.jsonl" });
    const messages = (await collect(readJsonlRows(path, "actually.jsonl"))).map((raw) => {
      const result = validate(raw);
      return result.ok ? "ok" : formatRowError(result.errors[0]!);
    });
    expect(messages).toHaveLength(3);
    expect(messages.map((m) => m.split(": ")[0])).toEqual([
      "actually.jsonl:1",
      "actually.jsonl:2",
      "actually.jsonl:4",
    ]);
    expect(messages[0]).toContain("row: expected a JSON object, found malformed JSON");
  });

  it("keeps reading after a line too long to hold", async () => {
    const long = `{"prompt": "${"x".repeat(1_100_000)}"}`;
    const rows = await rowsOf(`${long}\n{"prompt": "after"}\n`, "long.jsonl");
    expect(rows.map((r) => [r.line, r.problem?.message ?? r.fields.prompt])).toEqual([
      [1, expect.stringContaining("at most 1000000 characters")],
      [2, "after"],
    ]);
  });

  it("numbers lines right across read chunks", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) lines.push(i % 10 === 0 ? "" : `{"prompt": "ünï ${i} 🙂"}`);
    const rows = await rowsOf(lines.join("\n"), "many.jsonl");
    expect(rows).toHaveLength(27_000);
    expect(rows.every((r) => r.fields.prompt === `ünï ${r.line - 1} 🙂`)).toBe(true);
  });

  it("bytes that are not UTF-8 stop the whole file, naming line and column", async () => {
    const path = await files.write(
      "latin1.jsonl",
      Buffer.concat([
        Buffer.from('{"prompt": "a"}\n{"prompt": "caf'),
        Buffer.from([0xe9]),
        Buffer.from('"}\n'),
      ]),
    );
    const error = await thrown(() => collect(readJsonlRows(path, "latin1.jsonl")));
    expect(error).toBeInstanceOf(ManifestParseError);
    expect(error).toMatchObject({ code: "encoding", line: 2, column: 16 });
  });

  it("opens .jsonl and .ndjson files with no defaults", async () => {
    for (const name of ["a.jsonl", "a.ndjson", "A.NDJSON"]) {
      const path = await files.write(name, '{"prompt": "a"}\n');
      const manifest = await openManifest(path);
      expect(manifest.format).toBe("jsonl");
      expect(manifest.defaults).toEqual({});
      expect(await collect(manifest.rows())).toEqual([{ line: 1, fields: { prompt: "a" }, chars: 15 }]);
    }
  });
});
