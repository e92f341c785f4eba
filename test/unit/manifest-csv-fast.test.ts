import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCsvBatches } from "../../src/manifest/csv.js";
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

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
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
      const next = random(seed);
      const path = await files.write("f.csv", randomCsv(next, 1 + Math.floor(next() * 40)));
      const [fast, reference] = [await readAll(path, true), await readAll(path, false)];
      expect({ seed, ...fast }).toEqual({ seed, ...reference });
    }
  });

  it("on large files whose records, quotes and multi-byte characters cross 64 KiB blocks", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const next = random(seed * 7919);
      let text = "prompt,seed,note\n";
      while (text.length < 200_000) {
        const roll = next();
        if (roll < 0.6) text += `a plain prompt ${Math.floor(next() * 1e6)},${seed},x\n`;
        else if (roll < 0.8) text += `"quoted, with ""quotes"" and\na line feed 🙂",1,é\n`;
        else if (roll < 0.9) text += "\n";
        else text += ",,\n";
      }
      // One file in three ends with a fault csv-parse reports; the others are clean.
      if (seed % 3 === 0) text += 'bad "quote",1,x\n';
      if (seed % 3 === 1) text += "crlf,1,x\r\nafter,2,y\r\n";
      const path = await files.write("f.csv", text);
      const [fast, reference] = [await readAll(path, true), await readAll(path, false)];
      expect(fast.error).toEqual(reference.error);
      expect(fast.rows.length).toBe(reference.rows.length);
      expect(fast.rows).toEqual(reference.rows);
    }
  });
});
