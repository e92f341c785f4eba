import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parse } from "csv-parse/sync";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { csvCell } from "../../src/report/csv.js";
import { exportResults, metadataField, RESULT_FIELDS, writeResults } from "../../src/report/results.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

let fx: OpsFixture;
let dir: string;

beforeEach(async () => {
  fx = opsFixture();
  dir = await mkdtemp(join(tmpdir(), "ops-results-"));
});
afterEach(async () => {
  await fx.close();
  await rm(dir, { recursive: true, force: true });
});

/** Rows in manifest order with every ending, Chinese text, formulas and colliding metadata. */
async function seed(batch: string): Promise<void> {
  await fx.ledger.addRows(batch, [
    newRow("r1", { line: 2, prompt: '一只在雪山上的红色狐狸, "水彩"', metadata: { 作者: "李白", tag: "a" } }),
    newRow("r2", { line: 3, prompt: '=HYPERLINK("http://evil")', metadata: { status: "mine", tag: "+1" } }),
    newRow("r3", {
      line: 5,
      prompt: "line one\nline two",
      metadata: { extra: "@SUM(A1)", "meta.x": "kept" },
    }),
    newRow("r4", { line: 6, prompt: "-2+3", metadata: {} }),
    newRow("r5", { line: 7, prompt: "queued one", metadata: { tag: "\tTAB" } }),
  ]);
  await moveRow(fx.ledger, batch, "r1", "archived", { spent: 6 });
  await moveRow(fx.ledger, batch, "r2", "failed", { error: "generation failed (501): nope" });
  await moveRow(fx.ledger, batch, "r3", "generating");
  await moveRow(fx.ledger, batch, "r4", "cancelled");
}

describe("results", () => {
  it("JSONL: one record per row in manifest order, fixed fields, metadata, Chinese intact", async () => {
    await seed("b1");
    const out = new Collector();
    expect(await writeResults({ ledger: fx.ledger }, "b1", "jsonl", out)).toBe(5);
    const records = out.lines().map((line) => JSON.parse(line));
    expect(records.map((r) => r.id)).toEqual(["r1", "r2", "r3", "r4", "r5"]);
    expect(records.map((r) => r.status)).toEqual(["archived", "failed", "pending", "cancelled", "pending"]);
    expect(Object.keys(records[0]).slice(0, RESULT_FIELDS.length)).toEqual([...RESULT_FIELDS]);
    expect(records[0]).toEqual({
      id: "r1",
      line: 2,
      prompt: '一只在雪山上的红色狐狸, "水彩"',
      status: "archived",
      taskId: "task-r1",
      location: "/archive/b1/r1.png",
      bytes: 1234,
      sha256: "a".repeat(64),
      images: 1,
      credits: 6,
      creditsEstimated: 8,
      uncertain: 0,
      error: null,
      reusedFrom: null,
      model: "text-to-image",
      sourceImage: null,
      sourceSha256: null,
      作者: "李白",
      tag: "a",
    });
    // A metadata key that is a fixed field keeps the fixed field and arrives as meta.<key>.
    expect(records[1]).toMatchObject({
      status: "failed",
      images: null,
      "meta.status": "mine",
      error: "generation failed (501): nope",
    });
    expect(records[2]).toMatchObject({ taskId: "task-r3", location: null, "meta.meta.x": "kept" });
    expect(records[4]).toMatchObject({ taskId: null, credits: 0 });
  });

  it("CSV: a header of fixed fields plus the union of metadata keys; RFC 4180 quoting; formulas defused", async () => {
    await seed("b1");
    const out = new Collector();
    await writeResults({ ledger: fx.ledger, pageSize: 2 }, "b1", "csv", out);
    const text = out.text();
    expect(text.endsWith("\r\n")).toBe(true);
    const table: string[][] = parse(text, { relaxQuotes: false });
    const header = table[0]!;
    expect(header).toEqual([...RESULT_FIELDS, "作者", "tag", "meta.status", "extra", "meta.meta.x"]);
    const rows = table.slice(1).map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]])));
    expect(rows.map((r) => r.id)).toEqual(["r1", "r2", "r3", "r4", "r5"]);
    expect(rows[0]).toMatchObject({
      prompt: '一只在雪山上的红色狐狸, "水彩"',
      作者: "李白",
      tag: "a",
      extra: "",
      bytes: "1234",
    });
    expect(rows[1]).toMatchObject({
      prompt: '\'=HYPERLINK("http://evil")',
      tag: "'+1",
      "meta.status": "mine",
    });
    expect(rows[2]).toMatchObject({
      prompt: "line one\nline two",
      extra: "'@SUM(A1)",
      "meta.meta.x": "kept",
    });
    expect(rows[3]).toMatchObject({ prompt: "'-2+3", status: "cancelled" });
    expect(rows[4]).toMatchObject({ tag: "'\tTAB", status: "pending" });
    for (const row of rows)
      for (const cell of Object.values(row)) expect(cell ?? "").not.toMatch(/^[=+\-@\t\r]/);
  });

  it("CSV cells: quoting and injection rules one by one", () => {
    expect(csvCell("plain")).toBe("plain");
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell("a,b")).toBe('"a,b"');
    expect(csvCell("=1+1")).toBe("'=1+1");
    expect(csvCell("-1")).toBe("'-1");
    expect(csvCell("\r=1")).toBe('"\'\r=1"');
    expect(csvCell(null)).toBe("");
    expect(csvCell(12.5)).toBe("12.5");
    expect(metadataField("prompt")).toBe("meta.prompt");
    expect(metadataField("seed")).toBe("seed");
  });

  it("--out writes the file atomically and leaves no temporary file; an unknown batch writes nothing", async () => {
    await seed("b1");
    const file = join(dir, "results.csv");
    await writeFile(file, "previous content");
    const count = await exportResults(
      { ledger: fx.ledger },
      { batch: "b1", format: "csv", outFile: file, stdout: new Collector() },
    );
    expect(count).toBe(5);
    const text = await readFile(file, "utf8");
    expect(text.startsWith("id,line,prompt,status,")).toBe(true);
    expect(text).toContain("一只在雪山上的红色狐狸");
    expect(await readdir(dir)).toEqual(["results.csv"]);

    const missing = join(dir, "none.jsonl");
    await expect(
      exportResults(
        { ledger: fx.ledger },
        { batch: "nope", format: "jsonl", outFile: missing, stdout: new Collector() },
      ),
    ).rejects.toMatchObject({ code: "unknown_batch" });
    expect(await readdir(dir)).toEqual(["results.csv"]);
  });

  it("a write that fails half-way keeps the previous file and removes the temporary one", async () => {
    await seed("b1");
    const file = join(dir, "results.jsonl");
    await writeFile(file, "previous content");
    const broken = {
      ...fx.ledger,
      rows: async function* (batch: string) {
        let n = 0;
        for await (const row of fx.ledger.rows(batch)) {
          if (++n > 2) throw new Error("Redis went away");
          yield row;
        }
      },
    };
    await expect(
      exportResults(
        { ledger: broken },
        { batch: "b1", format: "jsonl", outFile: file, stdout: new Collector() },
      ),
    ).rejects.toThrow("Redis went away");
    expect(await readFile(file, "utf8")).toBe("previous content");
    expect(await readdir(dir)).toEqual(["results.jsonl"]);
  });

  it("streams: 2,000 rows come out in order through a slow consumer", async () => {
    const rows = Array.from({ length: 2_000 }, (_, i) =>
      newRow(`r${i}`, { line: i + 2, prompt: "x".repeat(200) }),
    );
    await fx.ledger.addRows("big", rows);
    // A consumer that takes one chunk per turn of the event loop, with a small buffer. A producer
    // that honours backpressure never writes while the stream asks for a drain.
    const chunks: string[] = [];
    let writesWhileFull = 0;
    let writes = 0;
    const out = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        setImmediate(callback);
      },
    });
    const write = out.write.bind(out) as (chunk: string) => boolean;
    out.write = ((chunk: string) => {
      writes++;
      if (out.writableNeedDrain) writesWhileFull++;
      return write(chunk);
    }) as typeof out.write;
    const count = await writeResults({ ledger: fx.ledger, pageSize: 300 }, "big", "jsonl", out);
    expect(writes).toBeGreaterThan(5);
    expect(writesWhileFull).toBe(0);
    expect(count).toBe(2_000);
    const text = chunks.join("");
    expect(text.length).toBeGreaterThan(500_000);
    const ids = text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l).id);
    expect(ids).toEqual(rows.map((r) => r.id));
  });
});
