import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NewRow } from "../ledger/index.js";
import type { ManifestRow } from "../manifest/index.js";
import { makeTempFolder, type TempFolder } from "./temp-folders.js";

/** A valid row as the ledger takes it, and whether its id was given (or derived). */
export interface QueuedRow extends NewRow {
  idGiven: boolean;
}

/**
 * One valid row on disk: [id, line, idGiven (0|1), estimatedCredits, prompt, params without
 * the prompt, metadata]: read back, it is the ledger's `NewRow` as is, with nothing to copy.
 */
type SpooledRow = [string, number, 0 | 1, number, string, object, Record<string, string>];

/** Buffered before a write to the spool file. */
const SPOOL_WRITE_CHARS = 256 * 1024;
/**
 * Read from the spool per block: the rows of a block are parsed together and stay alive until
 * the writer has taken them, so a small block keeps them few (a few hundred rows).
 */
const SPOOL_READ_CHARS = 64 * 1024;

/**
 * The valid rows of the first pass, one JSON array per line in a private temporary file, so the
 * second pass enqueues them without parsing and validating the manifest again (half the CPU of
 * reading it twice), and cannot meet a file that changed in between. Disk, not memory: the
 * process stays small whatever the row count.
 */
export class RowSpool {
  /** Rows written. */
  count = 0;
  private readonly out: WriteStream;
  private readonly lines: string[] = [];
  private pendingChars = 0;

  private constructor(
    private readonly folder: TempFolder,
    private readonly path: string,
  ) {
    this.out = createWriteStream(path, { flags: "wx", mode: 0o600 });
    // Errors surface through `finish` (and `write`'s drain wait); never as an unhandled event.
    this.out.on("error", () => {});
  }

  static async create(dir = tmpdir()): Promise<RowSpool> {
    const folder = await makeTempFolder(dir, "rows");
    return new RowSpool(folder, join(folder.path, "rows.jsonl"));
  }

  /** Appends a row; returns a promise to wait for when the file is behind (backpressure). */
  write(row: ManifestRow): Promise<void> | undefined {
    const { prompt, ...params } = row.params;
    const record: SpooledRow = [
      row.id,
      row.line,
      row.idGiven ? 1 : 0,
      row.estimatedCredits,
      prompt,
      params,
      row.metadata,
    ];
    const text = JSON.stringify(record);
    this.lines.push(text);
    this.pendingChars += text.length + 1;
    this.count++;
    return this.pendingChars >= SPOOL_WRITE_CHARS ? this.flush() : undefined;
  }

  /** Writes what is buffered and closes the file; rejects if any write failed. */
  async finish(): Promise<void> {
    await this.flush();
    const closed = once(this.out, "close");
    this.out.end();
    await closed;
    if (this.out.errored) throw this.out.errored;
  }

  /** The rows, in the order written. Call after `finish`. */
  async *rows(): AsyncGenerator<QueuedRow> {
    for await (const batch of this.batches()) yield* batch;
  }

  /** `rows()` a block of the file at a time (one async step per block, not per row); never empty. */
  async *batches(): AsyncGenerator<QueuedRow[]> {
    const input = createReadStream(this.path, { encoding: "utf8", highWaterMark: SPOOL_READ_CHARS });
    let rest = "";
    try {
      for await (const chunk of input as AsyncIterable<string>) {
        const text = rest + chunk;
        const end = text.lastIndexOf("\n");
        rest = text.slice(end + 1);
        if (end !== -1) yield text.slice(0, end).split("\n").map(parseLine);
      }
      if (rest !== "") yield [parseLine(rest)];
    } finally {
      input.destroy();
    }
  }

  /** Deletes the file; safe to call at any point, more than once. */
  async remove(): Promise<void> {
    this.out.destroy();
    await this.folder.remove();
  }

  private async flush(): Promise<void> {
    if (this.lines.length === 0) return;
    const text = `${this.lines.join("\n")}\n`;
    this.lines.length = 0;
    this.pendingChars = 0;
    // `once` rejects if the stream errors while we wait.
    if (!this.out.write(text)) await once(this.out, "drain");
  }
}

function parseLine(text: string): QueuedRow {
  return toRow(JSON.parse(text) as SpooledRow);
}

function toRow([id, line, idGiven, estimatedCredits, prompt, params, metadata]: SpooledRow): QueuedRow {
  return { id, line, prompt, params, metadata, estimatedCredits, idGiven: idGiven === 1 };
}
