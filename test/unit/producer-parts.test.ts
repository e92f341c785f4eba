import { describe, expect, it } from "vitest";
import { ManifestOptionError } from "../../src/manifest/index.js";
import { ChunkWriter } from "../../src/producer/chunk-writer.js";
import {
  DEFAULT_PRIORITY,
  type EnqueueSummary,
  formatSummaryText,
  guessFormat,
  parseBudgetCredits,
  parsePriority,
  resolveOptions,
  summaryJson,
} from "../../src/producer/index.js";
import { FEED_RECHECK_CHUNKS } from "../../src/producer/limits.js";
import { progressLine } from "../../src/producer/progress.js";
import { RowSpool } from "../../src/producer/row-spool.js";
import type { ProducerBackend } from "../../src/producer/types.js";
import { InFlightWindow } from "../../src/producer/window.js";
import { tempFiles } from "../fixtures/manifest/temp-files.js";
import { Collector } from "../integration/ops-helpers.js";

function summary(overrides: Partial<EnqueueSummary> = {}): EnqueueSummary {
  return {
    batch: "b",
    file: "prompts.csv",
    format: "csv",
    dryRun: false,
    strict: false,
    total: 10,
    valid: 10,
    enqueued: 10,
    duplicates: 0,
    duplicatesWithoutId: 0,
    idConflicts: 0,
    invalidRows: 0,
    errors: [],
    moreErrors: 0,
    warnings: [],
    estimatedCredits: 80,
    priority: DEFAULT_PRIORITY,
    strictRejected: false,
    elapsedMs: 5,
    exitCode: 0,
    ...overrides,
  };
}

describe("options", () => {
  it.each([
    ["1", 1],
    [" 42 ", 42],
    ["2097151", 2_097_151],
  ])("--priority %j is %d", (text, value) => {
    expect(parsePriority(text)).toBe(value);
  });

  it.each(["0", "-1", "2097152", "1.5", "high", "", "1e3"])("--priority %j is refused", (text) => {
    expect(() => parsePriority(text)).toThrow(ManifestOptionError);
  });

  it.each([
    ["0", 0],
    ["250", 250],
    ["12.5", 12.5],
  ])("--budget %j is %d credits", (text, value) => {
    expect(parseBudgetCredits(text)).toBe(value);
  });

  it.each(["-5", "ten", "1e3", "", "0x10"])("--budget %j is refused", (text) => {
    expect(() => parseBudgetCredits(text)).toThrow(/--budget: expected a number of credits/);
  });

  it("the batch is --batch, checked, or the file's name; stdin needs --batch", () => {
    expect(resolveOptions({ file: "dir/My Prompts.csv" }).batch).toBe("My-Prompts");
    expect(resolveOptions({ file: "x.csv", batch: "given" }).batch).toBe("given");
    expect(() => resolveOptions({ file: "x.csv", batch: "no/slash" })).toThrow(/invalid batch name/);
    expect(() => resolveOptions({ file: "-" })).toThrow(/pass --batch NAME/);
    expect(resolveOptions({ file: "x.csv" }).priority).toBe(DEFAULT_PRIORITY);
  });
});

describe("guessFormat (stdin has no extension)", () => {
  it.each([
    ["prompt,seed\na,1\n", "csv"],
    ["\uFEFFprompt\na\n", "csv"],
    ['  [{"prompt":"a"}]', "json"],
    ['{\n  "rows": [{"prompt":"a"}]\n}', "json"],
    ['{"rows":[{"prompt":"a"}],"defaults":{}}', "json"],
    ['{"prompt":"a"}\n{"prompt":"b"}\n', "jsonl"],
  ])("%j is %s", async (content, format) => {
    const files = await tempFiles();
    try {
      expect(await guessFormat(await files.write("stdin", content))).toBe(format);
    } finally {
      await files.cleanup();
    }
  });
});

describe("RowSpool", () => {
  it("gives back every row as the ledger takes it, in order, and removes its file", async () => {
    const files = await tempFiles();
    try {
      const spool = await RowSpool.create(files.dir);
      const metadata: Record<string, string> = JSON.parse('{"__proto__":"kept","note":"line1\\nline2"}');
      const rows = Array.from({ length: 5_000 }, (_, i) => ({
        line: i + 2,
        id: `r${i}`,
        idGiven: i % 2 === 0,
        params: { prompt: `un café "${i}"\n🙂`, seed: i, guidance_scale: 7.5, safety_check: false },
        metadata,
        estimatedCredits: 8,
      }));
      for (const row of rows) await spool.write(row);
      await spool.finish();
      const back = [];
      for await (const row of spool.rows()) back.push(row);
      expect(back).toEqual(
        rows.map(({ params: { prompt, ...params }, ...row }) => ({ ...row, prompt, params })),
      );
      expect(Object.hasOwn(back[0]!.metadata, "__proto__")).toBe(true);
      await spool.remove();
      const { readdir } = await import("node:fs/promises");
      expect(await readdir(files.dir)).toEqual([]);
    } finally {
      await files.cleanup();
    }
  });
});

/** A producer backend of no Redis: `ledger` over a ledger that has nothing, `addSubmitJobs` as given. */
function fakeBackend(
  ledger: Record<string, (...args: never[]) => Promise<unknown>>,
  addSubmitJobs: (ids: readonly string[]) => Promise<void> = async () => {},
): ProducerBackend {
  return {
    ledger: {
      setBudget: async () => true,
      getBatch: async () => undefined,
      feedWindow: async () => ({ fed: [], more: false }),
      ...ledger,
    },
    addSubmitJobs: (_batch: string, ids: readonly string[]) => addSubmitJobs(ids),
    feedSubmitWindow: async () => 0,
    rowsExist: async () => [],
    close: async () => {},
  } as unknown as ProducerBackend;
}

describe("ChunkWriter's check of given ids the batch already holds", () => {
  const row = (id: string, prompt: string) => ({
    id,
    line: 2,
    idGiven: true,
    estimatedCredits: 8,
    prompt,
    params: {},
    metadata: {},
  });

  it("a read that fails costs nothing but the check: the chunk's new rows get their jobs, the rest count as duplicates", async () => {
    const jobs: string[][] = [];
    const failures: unknown[] = [];
    const backend = fakeBackend(
      {
        addRows: async () => ["new", "duplicate"],
        getRows: async () => {
          throw new Error("Connection is closed.");
        },
      },
      async (ids) => {
        jobs.push([...ids]);
      },
    );
    const writer = new ChunkWriter({
      backend,
      batch: "b",
      file: "f.csv",
      priority: 1,
      chunkSize: 2,
      onIdCheckFailed: (error) => failures.push(error),
    });
    await writer.add(row("a", "new one"));
    await writer.add(row("b", "held before"));
    await writer.finish();
    expect(jobs).toEqual([["a"]]);
    expect(writer).toMatchObject({ enqueued: 1, duplicates: 1, idConflicts: 0 });
    expect(failures).toHaveLength(1);
  });

  it("reads the held rows of a chunk in one call", async () => {
    const reads: string[][] = [];
    const conflicts: string[] = [];
    const backend = fakeBackend({
      addRows: async (_batch: string, rows: readonly unknown[]) => rows.map(() => "duplicate"),
      getRows: async (_batch: string, ids: readonly string[]) => {
        reads.push([...ids]);
        return ids.map((id) => ({ id, line: 9, prompt: id === "c" ? "another" : "same", params: {} }));
      },
    });
    const writer = new ChunkWriter({
      backend,
      batch: "b",
      file: "f.csv",
      priority: 1,
      chunkSize: 3,
      onIdConflict: (r, held) => conflicts.push(`${r.id}@${held.line}`),
    });
    for (const id of ["a", "b", "c"]) await writer.add(row(id, "same"));
    await writer.finish();
    expect(reads).toEqual([["a", "b", "c"]]);
    expect(conflicts).toEqual(["c@9"]);
    expect(writer).toMatchObject({ duplicates: 2, idConflicts: 1 });
  });
});

describe("ChunkWriter's chunks", () => {
  it("end at ENQUEUE_CHUNK rows, or sooner at the chunk's characters of prompts and metadata (rows of long values)", async () => {
    const chunks: number[] = [];
    const backend = fakeBackend({
      addRows: async (_batch: string, rows: readonly unknown[]) => {
        chunks.push(rows.length);
        return rows.map(() => "new");
      },
    });
    const writer = new ChunkWriter({
      backend,
      batch: "b",
      file: "f.jsonl",
      priority: 1,
      chunkSize: 5,
      chunkChars: 1_000,
    });
    const row = (id: string, caption: string) => ({
      id,
      line: 2,
      idGiven: true,
      estimatedCredits: 8,
      prompt: "p",
      params: {},
      metadata: { caption },
    });
    for (let i = 0; i < 6; i++) await writer.add(row(`short${i}`, "x"));
    for (let i = 0; i < 3; i++) await writer.add(row(`long${i}`, "y".repeat(600)));
    await writer.finish();
    // Five short rows (the row count); the sixth and two long ones (1,225 characters, past 1,000);
    // the last long row (at the end).
    expect(chunks).toEqual([5, 3, 1]);
  });
});

describe("ChunkWriter's feeds of a window-managed batch", () => {
  /** A backend that holds every row and answers each feed with the next of `answers` (then 0). */
  function holdingBackend(answers: number[]) {
    let feeds = 0;
    const backend = {
      ledger: {
        addRows: async (_batch: string, rows: readonly unknown[]) => rows.map(() => "held" as const),
        setBudget: async () => true,
        getBatch: async () => undefined,
        feedWindow: async () => ({ fed: [], more: false }),
        getRows: async () => [],
      },
      addSubmitJobs: async () => {},
      async feedSubmitWindow() {
        feeds++;
        return answers.shift() ?? 0;
      },
      rowsExist: async () => [],
      close: async () => {},
    };
    return { backend, feeds: () => feeds };
  }
  const row = (i: number) => ({
    id: `r${i}`,
    line: i + 2,
    idGiven: true,
    estimatedCredits: 8,
    prompt: "p",
    params: {},
    metadata: {},
  });
  async function writeChunks(backend: ReturnType<typeof holdingBackend>["backend"], chunks: number) {
    const writer = new ChunkWriter({ backend, batch: "b", file: "f.csv", priority: 1, chunkSize: 1 });
    for (let i = 0; i < chunks; i++) await writer.add(row(i));
    await writer.finish();
  }

  it("a full window is fed again only every FEED_RECHECK_CHUNKS chunks, and once at the end", async () => {
    const fake = holdingBackend([]);
    await writeChunks(fake.backend, 3 * FEED_RECHECK_CHUNKS);
    // The first chunk's feed, one per FEED_RECHECK_CHUNKS skipped, one at the end.
    expect(fake.feeds()).toBe(1 + 2 + 1);
  });

  it("a run again whose rows the batch already holds feeds the window once at the end (a first run killed before its feed)", async () => {
    const fake = holdingBackend([]);
    fake.backend.ledger.addRows = async (_batch: string, rows: readonly unknown[]) =>
      rows.map(() => "duplicate" as never);
    await writeChunks(fake.backend, 3);
    expect(fake.feeds()).toBe(1);
  });

  it("while feeds find room, every chunk's rows are fed", async () => {
    const fake = holdingBackend(Array.from({ length: 10 }, () => 1));
    await writeChunks(fake.backend, 10);
    expect(fake.feeds()).toBe(10);
  });
});

describe("InFlightWindow", () => {
  it("never runs more than `max` writes at once", async () => {
    const window = new InFlightWindow(2);
    let running = 0;
    let peak = 0;
    const work = async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
    };
    for (let i = 0; i < 10; i++) await window.push(work());
    await window.drain();
    expect(peak).toBe(2);
    expect(running).toBe(0);
  });

  it("rejects with the first failure, after every pending write has settled", async () => {
    const window = new InFlightWindow(3);
    let settled = 0;
    await window.push(Promise.reject(new Error("first")));
    await window.push(
      new Promise<void>((resolve) =>
        setImmediate(() => {
          settled++;
          resolve();
        }),
      ),
    );
    await expect(window.drain()).rejects.toThrow("first");
    expect(settled).toBe(1);
  });
});

describe("progress line", () => {
  it("draws on a TTY once the pass has run a while, and erases itself", () => {
    let now = 0;
    const stream = new Collector({ isTTY: true });
    const line = progressLine(stream, { now: () => now }, "enqueuing");
    line.update(1024);
    expect(stream.text()).toBe("");
    now = 2_000;
    line.update(4096);
    expect(stream.text()).toBe("\r\x1b[Kenqueuing: 4,096 rows (2,048 rows/s)");
    line.done();
    expect(stream.text().endsWith("\r\x1b[K")).toBe(true);
  });

  it("keeps drawing when rows come in batches of any size (a batch cut short by its characters)", () => {
    let now = 2_000;
    const stream = new Collector({ isTTY: true });
    const line = progressLine(stream, { now: () => now }, "enqueuing");
    line.update(3);
    for (let rows = 3 + 256; rows < 5_000; rows += 256) line.update(rows);
    now = 4_000;
    line.update(5_123);
    expect(stream.text()).toContain("enqueuing: 5,123 rows");
  });

  it("prints nothing when the stream is not a TTY", () => {
    let now = 0;
    const stream = new Collector({ isTTY: false });
    const line = progressLine(stream, { now: () => now }, "enqueuing");
    now = 10_000;
    line.update(1024 * 100);
    line.done();
    expect(stream.text()).toBe("");
  });
});

describe("summary text", () => {
  it("lists the first errors, then how many more", () => {
    const text = formatSummaryText(
      summary({
        invalidRows: 25,
        errors: [{ file: "prompts.csv", line: 7, field: "seed", message: 'expected an integer, found "x"' }],
        moreErrors: 24,
      }),
    );
    expect(text).toContain(
      'Invalid:            25 rows\n  prompts.csv:7: seed: expected an integer, found "x"\n  and 24 more errors\n',
    );
  });

  it("a dry run without Redis says what it could not check", () => {
    const text = formatSummaryText(
      summary({
        dryRun: true,
        enqueued: 0,
        redisNote:
          "Redis is not answering at redis://h:1: Connection is closed. Start one, or set REDIS_URL.",
      }),
    );
    expect(text).toContain(
      "Already in batch:   not checked (Redis is not answering at redis://h:1: Connection is closed)\n",
    );
    expect(text).toContain("Estimated credits:  80 for 10 rows");
    expect(text).toContain("Next: run the same command without --dry-run to enqueue.");
  });

  it("a --strict rejection says nothing was enqueued and gives no next command", () => {
    const text = formatSummaryText(
      summary({ strictRejected: true, invalidRows: 2, enqueued: 0, exitCode: 2 }),
    );
    expect(text).toContain("--strict: 2 invalid rows, so nothing was enqueued. Fix them and run again.");
    expect(text).not.toContain("kie-batch worker");
  });

  it("shows a priority only when it is not the default", () => {
    expect(formatSummaryText(summary())).not.toContain("Priority:");
    expect(formatSummaryText(summary({ priority: 1 }))).toContain("Priority:           1 (lower runs first)");
  });

  it("the JSON keeps the documented fields first", () => {
    const json = summaryJson(
      summary({
        errors: [{ file: "f", line: 3, field: "prompt", message: "expected a prompt, found none" }],
      }),
    );
    expect(Object.keys(json).slice(0, 7)).toEqual([
      "batch",
      "total",
      "enqueued",
      "duplicates",
      "invalid",
      "warnings",
      "estimatedCredits",
    ]);
    expect(json.invalid).toEqual([{ line: 3, error: "prompt: expected a prompt, found none" }]);
  });
});
