import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { finished } from "node:stream/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCsvBatches } from "../../src/manifest/csv.js";
import {
  createRowValidator,
  formatRowError,
  ManifestParseError,
  openManifest,
  readCsvRows,
} from "../../src/manifest/index.js";
import type { RawRow } from "../../src/manifest/types.js";
import { collect, type TempFiles, tempFiles, thrown } from "../fixtures/manifest/temp-files.js";

let files: TempFiles;
beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await files.cleanup();
});

async function rowsOf(content: string | Uint8Array, name = "m.csv") {
  const path = await files.write(name, content);
  return collect(readCsvRows(path, name));
}

async function parseErrorOf(content: string | Uint8Array, name = "bad.csv"): Promise<ManifestParseError> {
  const path = await files.write(name, content);
  const error = await thrown(() => collect(readCsvRows(path, name)));
  expect(error).toBeInstanceOf(ManifestParseError);
  return error as ManifestParseError;
}

describe("CSV reader: the hard cases", () => {
  it("reads a UTF-8 BOM, CRLF line ends and trims the header's whitespace", async () => {
    const rows = await rowsOf("\uFEFF prompt ,\tseed \r\na cat,1\r\na dog,2\r\n");
    expect(rows).toEqual([
      { line: 2, fields: { prompt: "a cat", seed: "1" } },
      { line: 3, fields: { prompt: "a dog", seed: "2" } },
    ]);
  });

  it("ends a record at every line ending of a file that mixes them (files pasted together): no merged rows, no CR left in a field", async () => {
    // CRLF first, then a bare LF: csv-parse's own detection kept CRLF and read "a dog\na bird" as one prompt.
    expect(await rowsOf("prompt,seed\r\na cat,1\r\na dog,2\na bird,3\r\n")).toEqual([
      { line: 2, fields: { prompt: "a cat", seed: "1" } },
      { line: 3, fields: { prompt: "a dog", seed: "2" } },
      { line: 4, fields: { prompt: "a bird", seed: "3" } },
    ]);
    // LF first, then a CRLF line: its last field kept the CR ("2\r").
    expect(await rowsOf("prompt,seed\na cat,1\na dog,2\r\na bird,3\n")).toEqual([
      { line: 2, fields: { prompt: "a cat", seed: "1" } },
      { line: 3, fields: { prompt: "a dog", seed: "2" } },
      { line: 4, fields: { prompt: "a bird", seed: "3" } },
    ]);
    // A line break inside quotes is still the field's own.
    expect(await rowsOf('prompt,seed\r\n"two\nlines",1\nnext,2\r\n')).toEqual([
      { line: 2, fields: { prompt: "two\nlines", seed: "1" } },
      { line: 4, fields: { prompt: "next", seed: "2" } },
    ]);
  });

  describe("line numbers count every line ending: LF, CRLF (once) and a CR alone", () => {
    /** The errors a row validator gives for the file's rows, as printed. */
    async function rowErrorsOf(content: string): Promise<string[]> {
      const validate = createRowValidator({ file: "m.csv" });
      const messages: string[] = [];
      for (const raw of await rowsOf(content)) {
        const result = validate(raw);
        if (!result.ok) messages.push(...result.errors.map(formatRowError));
      }
      return messages;
    }

    it("a CR-only file: a bad value on record 4 names line 5 (the header is line 1)", async () => {
      const text = "prompt,seed\ra cat,1\ra dog,2\ra bird,3\ra fox,x\ran owl,5\r";
      expect((await rowsOf(text)).map((r) => r.line)).toEqual([2, 3, 4, 5, 6]);
      expect(await rowErrorsOf(text)).toEqual([expect.stringMatching(/^m\.csv:5: seed: expected/)]);
    });

    it("a file mixing CRLF, LF and CR: the same", async () => {
      const text = "prompt,seed\r\na cat,1\na dog,2\ra bird,3\r\na fox,x\nan owl,5\r";
      expect((await rowsOf(text)).map((r) => r.line)).toEqual([2, 3, 4, 5, 6]);
      expect(await rowErrorsOf(text)).toEqual([expect.stringMatching(/^m\.csv:5: seed: expected/)]);
    });

    it("blank CR lines and a CR inside quotes count as lines", async () => {
      const rows = await rowsOf('prompt,seed\r\ra,1\r\r"two\rlines",2\rnext,3\r');
      expect(rows.map((r) => [r.line, r.fields.prompt])).toEqual([
        [3, "a"],
        [5, "two\rlines"],
        [7, "next"],
      ]);
    });

    it("a parse error in a CR-only file names its own line", async () => {
      const error = await parseErrorOf('prompt,seed\ra,1\rb,2\rc,3\r"x,5\r');
      expect(error.line).toBe(5);
      expect(error.message).toMatch(/^bad\.csv:5: /);
    });

    it("broken quotes in a CR-only file refuse it on their own line", async () => {
      const error = await parseErrorOf('prompt,seed\ra,1\rb,2\r"x"y,5\rz,6\r');
      expect(error.line).toBe(4);
      expect(error.reason).toContain('field 1 ("prompt"): a closing quote must be followed by a comma');
    });
  });

  it("reads a file without BOM and without a final newline", async () => {
    const rows = await rowsOf("prompt,seed\na cat,1");
    expect(rows).toEqual([{ line: 2, fields: { prompt: "a cat", seed: "1" } }]);
  });

  it("keeps commas inside quotes and turns doubled quotes into one", async () => {
    const rows = await rowsOf('prompt,note\n"a cat, a dog","she said ""hi"""\n');
    expect(rows[0]?.fields).toEqual({ prompt: "a cat, a dog", note: 'she said "hi"' });
  });

  it("keeps newlines inside quotes and numbers later rows by their physical line (LF)", async () => {
    const rows = await rowsOf(
      'prompt,seed\n"line one\nline two\nline three",1\nnext,2\n"a\n\nb",3\nlast,4\n',
    );
    expect(rows.map((r) => r.line)).toEqual([2, 5, 6, 9]);
    expect(rows[0]?.fields.prompt).toBe("line one\nline two\nline three");
    expect(rows[2]?.fields.prompt).toBe("a\n\nb");
  });

  it("numbers rows by physical line after a CRLF inside quotes (csv-parse's own count is off here)", async () => {
    const rows = await rowsOf('prompt,seed\r\n"x\r\ny\r\nz",1\r\nnext,2\r\n');
    expect(rows.map((r) => r.line)).toEqual([2, 5]);
    expect(rows[0]?.fields.prompt).toBe("x\r\ny\r\nz");
  });

  it("skips blank lines and all-empty records, and still numbers rows by physical line", async () => {
    const rows = await rowsOf('\nprompt,seed\n\na,1\n\n\n"b\nc",2\n,\n  ,  \nd,3\n\n');
    expect(rows.map((r) => [r.line, r.fields.prompt])).toEqual([
      [4, "a"],
      [7, "b\nc"],
      [11, "d"],
    ]);
  });

  it("skips blank CRLF lines too", async () => {
    const rows = await rowsOf("prompt\r\n\r\na\r\n\r\n\r\nb\r\n");
    expect(rows.map((r) => r.line)).toEqual([3, 6]);
  });

  it("names an unnamed header column column_N", async () => {
    const rows = await rowsOf("prompt,,seed\na,x,1\n");
    expect(rows[0]?.fields).toEqual({ prompt: "a", column_2: "x", seed: "1" });
  });

  it("reports a record with the wrong number of fields as that row's problem and goes on", async () => {
    const rows = await rowsOf("prompt,seed\na,1,extra\nb\nc,2,,\nd,4\n");
    expect(rows.map((r) => [r.line, r.problem?.message ?? "ok"])).toEqual([
      [2, expect.stringContaining("expected 2 fields as in the header, found 3")],
      [3, expect.stringContaining("expected 2 fields as in the header, found 1")],
      [4, "ok"], // trailing empty cells are harmless
      [5, "ok"],
    ]);
  });

  it("numbers every row exactly across 64 KiB chunk boundaries, with multi-byte text and multi-line fields", async () => {
    const lines = ["prompt,seed"];
    const expected: number[] = [];
    let line = 2;
    for (let i = 0; i < 4000; i++) {
      const multi = i % 7 === 0;
      const crlf = i % 3 === 0 ? "\r\n" : "\n";
      const prompt = multi ? `"héllo ${"🙂".repeat(i % 5)}${crlf}wörld ""${i}"",${crlf}end"` : `plain ${i} ✓`;
      expected.push(line);
      const record = `${prompt},${i}`;
      lines.push(record);
      line += record.split("\n").length;
      if (i % 11 === 0) {
        lines.push(""); // a blank line
        line += 1;
      }
    }
    const rows = await rowsOf(`${lines.join("\n")}\n`, "chunks.csv");
    expect(rows).toHaveLength(4000);
    expect(rows.map((r) => r.line)).toEqual(expected);
    expect(rows[21]?.fields.prompt).toBe('héllo 🙂\r\nwörld "21",\r\nend');
    expect(rows[14]?.fields.prompt).toBe('héllo 🙂🙂🙂🙂\nwörld "14",\nend');
  });

  it("reads the same rows on a second pass", async () => {
    const path = await files.write("twice.csv", "prompt\na\nb\n");
    const manifest = await openManifest(path);
    expect(await collect(manifest.rows())).toEqual(await collect(manifest.rows()));
  });

  it("closes the file when the reader stops early", async () => {
    const body = Array.from({ length: 20_000 }, (_, i) => `row ${i}`).join("\n");
    const path = await files.write("early.csv", `prompt\n${body}\n`);
    let seen = 0;
    for await (const _ of readCsvRows(path, "early.csv")) if (++seen === 3) break;
    expect(seen).toBe(3);
  });
});

describe("CSV reader: file-level errors name the position", () => {
  it("an unterminated quote points at the line where its record starts", async () => {
    const error = await parseErrorOf('prompt,seed\na,1\n\n\n"never closed,2\nb,3\nc,4\n');
    expect(error.code).toBe("syntax");
    expect(error.line).toBe(5);
    expect(error.message).toMatch(/^bad\.csv:5: .*never closed/);
  });

  it("an unterminated quote after a multi-line field still points at its own record", async () => {
    const error = await parseErrorOf('prompt,seed\r\n"multi\r\nline",1\r\n"open,2\r\nmore\r\n');
    expect(error.line).toBe(4);
  });

  it("a quote inside a field that does not open with one is read as the text's own, and the file goes on", async () => {
    const rows = await rowsOf(
      'prompt,seed\n"two\nlines",1\na sign that says "hi" in neon,2\nx,a 5" vase\nlast,4\n',
    );
    expect(rows).toEqual([
      { line: 2, fields: { prompt: "two\nlines", seed: "1" } },
      { line: 4, fields: { prompt: 'a sign that says "hi" in neon', seed: "2" } },
      { line: 5, fields: { prompt: "x", seed: 'a 5" vase' } },
      { line: 6, fields: { prompt: "last", seed: "4" } },
    ]);
  });

  it("a quoted comma left unquoted splits its row: that row's field count is its error, the others are read", async () => {
    const rows = await rowsOf('prompt,seed\na "big, red" apple,1\nnext,2\n');
    expect(rows.map((row) => row.line)).toEqual([2, 3]);
    expect(rows[0]!.problem?.message).toContain("expected 2 fields as in the header, found 3");
    expect(rows[1]).toEqual({ line: 3, fields: { prompt: "next", seed: "2" } });
  });

  /** Rows read before a file's error, and the error, both ways (the fast scanner and csv-parse alone). */
  async function readBothWays(text: string) {
    const out: { lines: number[]; error: ManifestParseError }[] = [];
    for (const fast of [true, false]) {
      const path = await files.write("both.csv", text);
      const lines: number[] = [];
      const error = await thrown(async () => {
        for await (const batch of readCsvBatches(path, "both.csv", { fast }))
          lines.push(...batch.map((row) => row.line));
      });
      expect(error).toBeInstanceOf(ManifestParseError);
      out.push({ lines, error: error as ManifestParseError });
    }
    expect(out[0]!.lines).toEqual(out[1]!.lines);
    expect(out[0]!.error.message).toBe(out[1]!.error.message);
    return out[0]!;
  }

  it("text after a closing quote refuses the file on its line, naming the field; the rows before it are read", async () => {
    const { lines, error } = await readBothWays(
      'prompt,seed\na,1\n"ok ""q""",2\nx,"a 5" tall vase",3\nlast,5\n',
    );
    expect(lines).toEqual([2, 3]);
    expect(error.line).toBe(4);
    expect(error.reason).toContain('field 2 ("seed"): a closing quote must be followed by a comma');
  });

  it("a bad cell after a cell over several lines is placed on its own line (LF, CRLF, a lone CR)", async () => {
    for (const eol of ["\n", "\r\n", "\r"]) {
      const text = [
        "prompt,model,note",
        '"a red',
        'vase",text-to-image,"5" tall"',
        "ok,text-to-image,x",
        "",
      ].join(eol);
      const { lines, error } = await readBothWays(text);
      expect(lines).toEqual([]);
      expect(error.line).toBe(3);
      expect(error.reason).toContain('field 3 ("note")');
    }
  });

  it("a quoted cell broken over two lines refuses the file: its second line is never read as a row of its own", async () => {
    const { lines, error } = await readBothWays('prompt,seed\n"He said "hi"\nand left",7\nok,8\n');
    expect(lines).toEqual([]);
    expect(error.line).toBe(2);
    const prompt = await readBothWays('prompt\nfirst\n"He said "hi"\nand left"\nok\n');
    expect(prompt.lines).toEqual([2]);
    expect(prompt.error.line).toBe(3);
  });

  it.each([
    ["LF", "\n"],
    ["CRLF", "\r\n"],
    ["CR", "\r"],
  ])("text after a closing quote after blank lines is found on its line (%s)", async (_name, eol) => {
    const { lines, error } = await readBothWays(
      ["prompt,client", "a,x", "", "", '"ab"c,d', "e,f", ""].join(eol),
    );
    expect(lines).toEqual([2]);
    expect(error.line).toBe(5);
  });

  it.each([
    [
      "a space before a quoted cell with a comma",
      'id,prompt,client,notes\n0,ok,a,b\n1, "a cat, on a mat", x,\n2,c,d,e\n',
      3,
      'field 2 ("prompt")',
    ],
    [
      "a space before a quoted cell with a line break",
      'prompt,client\nok,a\n "line1\nline2",acme\n',
      3,
      'field 1 ("prompt")',
    ],
  ])(
    "%s refuses the file on its line (where the row ends cannot be known); the rows before are read",
    async (_name, text, line, where) => {
      for (const fast of [true, false]) {
        const path = await files.write("space-quote.csv", text);
        const rows: RawRow[] = [];
        const error = await thrown(async () => {
          for await (const batch of readCsvBatches(path, "space-quote.csv", { fast })) rows.push(...batch);
        });
        expect(error).toBeInstanceOf(ManifestParseError);
        expect((error as ManifestParseError).line).toBe(line);
        expect((error as ManifestParseError).reason).toContain(
          `${where}: a quote after a space at the start of a cell`,
        );
        expect(rows.map((row) => row.line)).toEqual([2]);
      }
    },
  );

  it("text after a closing quote in the header refuses the file, on its line", async () => {
    const error = await parseErrorOf('"prompt"x,seed\na,1\n');
    expect(error.line).toBe(1);
    expect(error.reason).toContain("field 1: a closing quote must be followed by a comma");
  });

  it("rows before a syntax error are read first", async () => {
    const path = await files.write("partial.csv", 'prompt\na\nb\n"c\n');
    const seen: number[] = [];
    const error = await thrown(async () => {
      for await (const row of readCsvRows(path, "partial.csv")) seen.push(row.line);
    });
    expect(seen).toEqual([2, 3]);
    expect((error as ManifestParseError).line).toBe(4);
  });

  it("invalid UTF-8 names line and column of the first bad byte", async () => {
    const bytes = Buffer.concat([
      Buffer.from("prompt\nfine\nnaïve "),
      Buffer.from([0xff]),
      Buffer.from("x\n"),
    ]);
    const error = await parseErrorOf(bytes);
    expect(error.code).toBe("encoding");
    expect([error.line, error.column]).toEqual([3, 7]);
    expect(error.message).toMatch(/^bad\.csv:3:7: not valid UTF-8 \(byte 0xFF\)/);
  });

  it("invalid UTF-8 in a file of lone CR line ends (old Mac) is placed on its line, as the rows are; a CRLF split over two reads counts once", async () => {
    for (const eol of ["\r", "\r\n", "\n"]) {
      const bytes = Buffer.concat([
        Buffer.from(["prompt,model", "a cat,text-to-image", "a dog,text-to-image", "caf"].join(eol)),
        Buffer.from([0xe9]),
        Buffer.from(` au lait,text-to-image${eol}`),
      ]);
      const error = await parseErrorOf(bytes);
      expect([error.line, error.column], JSON.stringify(eol)).toEqual([4, 4]);
    }
    // 64 KiB reads: a CR ending one read and its LF opening the next is one line end.
    const head = "prompt\r\n";
    const filler = "x".repeat(64 * 1024 - head.length - 1);
    const bytes = Buffer.concat([
      Buffer.from(`${head}${filler}\r\nnext\r\nbad `),
      Buffer.from([0xff]),
      Buffer.from("\r\n"),
    ]);
    expect(bytes.indexOf("\r\nnext")).toBe(64 * 1024 - 1);
    const split = await parseErrorOf(bytes);
    expect([split.line, split.column]).toEqual([4, 5]);
  });

  it.each([
    ["Latin-1 é", Buffer.from([0x70, 0x0a, 0xe9, 0x0a]), 2, 1],
    ["overlong encoding", Buffer.from([0x70, 0x0a, 0x61, 0xc0, 0x80, 0x0a]), 2, 2],
    ["UTF-16 surrogate", Buffer.from([0x70, 0x0a, 0xed, 0xa0, 0x80, 0x0a]), 2, 1],
    ["a character cut off at the end", Buffer.from([0x70, 0x0a, 0x61, 0xe2, 0x82]), 2, 2],
  ])("rejects %s", async (_name, bytes, line, column) => {
    const error = await parseErrorOf(bytes);
    expect(error.code).toBe("encoding");
    expect([error.line, error.column]).toEqual([line, column]);
  });

  it("accepts a multi-byte character split across two read chunks", async () => {
    const pad = "a".repeat(64 * 1024 - "prompt\n".length - 2);
    const rows = await rowsOf(`prompt\n${pad}🙂\nnext\n`, "split.csv");
    expect(rows.map((r) => r.fields.prompt)).toEqual([`${pad}🙂`, "next"]);
  });

  it("invalid UTF-8 far into a large file is placed exactly", async () => {
    const body = Array.from({ length: 30_000 }, (_, i) => `prompt number ${i} ✓`).join("\n");
    const bytes = Buffer.concat([Buffer.from(`prompt\n${body}\nab`), Buffer.from([0xfe]), Buffer.from("\n")]);
    const error = await parseErrorOf(bytes, "big-bad.csv");
    expect([error.line, error.column]).toEqual([30_002, 3]);
  });

  it("an unclosed quote early in a large file stops at the row limit instead of swallowing the file", async () => {
    const rest = Array.from({ length: 100_000 }, (_, i) => `row ${i},${i}`).join("\n");
    const error = await parseErrorOf(`prompt,seed\na,1\n"oops,2\n${rest}\n`, "runaway.csv");
    expect(error.code).toBe("too-large");
    expect(error.line).toBe(3);
  });

  it("a header without a prompt column is refused, with a hint for a case mismatch", async () => {
    const error = await parseErrorOf("Prompt,seed\na,1\n");
    expect(error.code).toBe("structure");
    expect(error.line).toBe(1);
    expect(error.reason).toContain('no "prompt" column');
    expect(error.reason).toContain('rename "Prompt" to "prompt"');
  });

  it("a column named twice is refused", async () => {
    const error = await parseErrorOf("prompt,seed, seed\na,1,2\n");
    expect(error.reason).toContain('column "seed" appears twice');
  });

  it("an empty file is refused; a header alone gives no rows", async () => {
    expect((await parseErrorOf("")).reason).toContain("empty");
    expect(await rowsOf("prompt,seed\n")).toEqual([]);
  });

  it("openManifest already refuses a header without prompt, before any row is read", async () => {
    const path = await files.write("noprompt.csv", "text,seed\na,1\n");
    const error = await thrown(() => openManifest(path));
    expect(error).toBeInstanceOf(ManifestParseError);
    expect((error as ManifestParseError).line).toBe(1);
  });
});

describe("CSV reader: constant memory", () => {
  it("streams a 200,000-row file with heap growth far below the file's size", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;

    const rowCount = 200_000;
    const padding = "x".repeat(180);
    const path = `${files.dir}/big.csv`;
    const out = createWriteStream(path);
    out.write("id,prompt,seed,guidance_scale,note\n");
    for (let i = 0; i < rowCount; i++) {
      const ok = out.write(`r${i},"a photo of thing ${i}, detailed",${i},7.5,${padding}\n`);
      if (!ok) await once(out, "drain");
    }
    out.end();
    await finished(out);
    const { size } = await stat(path);
    expect(size).toBeGreaterThan(40 * 1024 * 1024);

    gc();
    const before = process.memoryUsage().heapUsed;
    let peak = 0;
    let valid = 0;
    const manifest = await openManifest(path);
    const validate = createRowValidator({ file: manifest.file });
    for await (const raw of manifest.rows()) {
      if (validate(raw).ok) valid++;
      if (valid % 25_000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - before);
      }
    }
    expect(valid).toBe(rowCount);
    expect(peak).toBeLessThan(20 * 1024 * 1024);
  }, 30_000);
});
