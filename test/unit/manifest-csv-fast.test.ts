import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCsvBatches } from "../../src/manifest/csv.js";
import { createRandom } from "../../src/simulator/random.js";
import { type TempFiles, tempFiles } from "../fixtures/manifest/temp-files.js";

let files: TempFiles;
beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await files.cleanup();
});

/** What a reader gives for a file: every row, then the error (name, code, message, place), if any. */
async function readAll(path: string, fast: boolean) {
  const rows: unknown[] = [];
  try {
    for await (const batch of readCsvBatches(path, "f.csv", { fast })) rows.push(...batch);
  } catch (error) {
    const e = error as { name?: string; code?: string; message?: string; line?: number; column?: number };
    return {
      rows,
      error: { name: e.name, code: e.code, message: e.message, line: e.line, column: e.column },
    };
  }
  return { rows, error: undefined };
}

const PIECES = [
  "a",
  "cat",
  " ",
  "é",
  "🙂",
  ",",
  ",",
  '"',
  '""',
  '"x, y"',
  "\n",
  "\n",
  "\r\n",
  "\r",
  "\t",
  "7",
];

function randomCsv(next: () => number, pieces: number): string {
  const header = next() < 0.8 ? "prompt,seed\n" : next() < 0.5 ? "\n\nprompt\n" : "";
  let text = header;
  for (let i = 0; i < pieces; i++) text += PIECES[Math.floor(next() * PIECES.length)];
  return text;
}

describe("the fast CSV path reads exactly what csv-parse reads", () => {
  it("on 1,500 small random files: the same rows, lines, problems and errors", async () => {
    for (let seed = 1; seed <= 1_500; seed++) {
      // Seeded (mulberry32): a failure names a reproducible seed.
      const next = createRandom(seed).next;
      const path = await files.write("f.csv", randomCsv(next, 1 + Math.floor(next() * 40)));
      const [fast, reference] = [await readAll(path, true), await readAll(path, false)];
      expect({ seed, ...fast }).toEqual({ seed, ...reference });
    }
  });

  it("on large files whose records, quotes and multi-byte characters cross 64 KiB blocks", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const next = createRandom(seed * 7919).next;
      let text = "prompt,seed,note\n";
      while (text.length < 200_000) {
        const roll = next();
        if (roll < 0.6) text += `a plain prompt ${Math.floor(next() * 1e6)},${seed},x\n`;
        else if (roll < 0.8) text += `"quoted, with ""quotes"" and\na line feed 🙂",1,é\n`;
        else if (roll < 0.9) text += "\n";
        else text += ",,\n";
      }
      // One file in three ends with a row whose quotes are broken (the file's error, read by
      // csv-parse from there), one with CRLF lines (csv-parse's too); the others are clean.
      if (seed % 3 === 0) text += '"bad" quote,1,x\nlast,2,y\n';
      if (seed % 3 === 1) text += "crlf,1,x\r\nafter,2,y\r\n";
      const path = await files.write("f.csv", text);
      const [fast, reference] = [await readAll(path, true), await readAll(path, false)];
      expect(fast.error).toEqual(reference.error);
      expect(fast.rows.length).toBe(reference.rows.length);
      expect(fast.rows).toEqual(reference.rows);
      if (seed % 3 === 0) expect(fast.error?.message).toContain("a closing quote must be followed");
    }
  });

  describe("files with CR line ends (csv-parse reads from the first CR): both number lines alike, and right", () => {
    /** Reads `text` both ways; checks they agree and returns the rows' lines and the error's. */
    async function linesOf(text: string) {
      const path = await files.write("f.csv", text);
      const [fast, reference] = [await readAll(path, true), await readAll(path, false)];
      expect(fast).toEqual(reference);
      return { lines: fast.rows.map((row) => (row as { line: number }).line), error: fast.error?.line };
    }

    it.each([
      ["CR only", "prompt,seed\ra,1\rb,2\rc,3\rd,x\re,5\r"],
      ["CRLF, LF and CR mixed", "prompt,seed\r\na,1\nb,2\rc,3\r\nd,x\ne,5\r"],
      ["LF first, then CR", "prompt,seed\na,1\nb,2\rc,3\rd,x\re,5"],
    ])("%s: one line a record", async (_name, text) => {
      expect(await linesOf(text)).toEqual({ lines: [2, 3, 4, 5, 6], error: undefined });
    });

    it("a CR-only error names its line", async () => {
      expect(await linesOf('prompt,seed\ra,1\rb,2\rc,3\r"x,5\r')).toMatchObject({ error: 5 });
    });

    it("a CRLF split across two 64 KiB blocks counts once, a CR ending a block counts", async () => {
      const BLOCK = 64 * 1024;
      let text = "prompt,seed\r";
      let rows = 0;
      /** One row whose line ending starts at byte `at` (the text is ASCII: bytes are characters). */
      const rowEndingAt = (at: number, ending: string) => {
        const tail = `,${rows}`;
        text += `${"x".repeat(at - text.length - tail.length)}${tail}${ending}`;
        rows++;
      };
      const fill = (until: number, endings: string[]) => {
        while (text.length < until) text += `prompt ${rows},${rows}${endings[rows++ % endings.length]}`;
      };
      fill(BLOCK - 100, ["\r"]);
      rowEndingAt(BLOCK - 1, "\r\n");
      fill(2 * BLOCK - 100, ["\r", "\n", "\r\n"]);
      rowEndingAt(2 * BLOCK - 1, "\r");
      fill(3 * BLOCK - 100, ["\r\n", "\r"]);
      rowEndingAt(3 * BLOCK - 1, "\r");
      fill(3 * BLOCK + 200, ["\r"]);
      const { lines } = await linesOf(text);
      expect(lines).toEqual(Array.from({ length: rows }, (_, i) => i + 2));
    });
  });
});
