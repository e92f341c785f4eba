import type { ResultsFormat } from "../core/values.js";
import { modelOf, sourceImageOf } from "../kie/index.js";
import type { Ledger, RowRecord, Status } from "../ledger/index.js";
import { requireBatch } from "./batch.js";
import { type CsvValue, csvLine } from "./csv.js";
import { writeFileAtomically } from "./output-file.js";
import type { OpsLedger } from "./types.js";

/**
 * `kie-batch results`: one record per row, in manifest order, streamed from the ledger page by
 * page, each row read once. Nothing holds the whole file: the CSV header's metadata columns (the
 * union over the rows, in order of first appearance) are the ones the ledger kept as the rows were
 * recorded; only a batch recorded before it kept them is read twice (first for its columns).
 */

/** The fixed fields of every record, in output order; manifest metadata follows them. */
export const RESULT_FIELDS = [
  "id",
  "line",
  "prompt",
  "status",
  "taskId",
  "location",
  "bytes",
  "sha256",
  /**
   * How many images the row's task gave and the archive holds (location, bytes and sha256 are the
   * first's; the others are beside it, `<id>@2.png` ..., and every one is in the row's sidecar).
   */
  "images",
  "credits",
  "creditsEstimated",
  "uncertain",
  "error",
  /** `<batch>/<rowId>` whose image this row's is a copy of (reuse across batches), else empty. */
  "reusedFrom",
  /** text-to-image, image-to-image or edit. */
  "model",
  /** The input image: the row's image_url, or its local image_path. */
  "sourceImage",
  /** The local input image's sha256 when it was enqueued. */
  "sourceSha256",
] as const;

const FIXED: ReadonlySet<string> = new Set(RESULT_FIELDS);
const META_PREFIX = "meta.";

/** Results say where a row ended; every state still moving is "pending". */
type ResultStatus = "archived" | "failed" | "pending" | "cancelled";

function resultStatus(status: Status): ResultStatus {
  return status === "archived" || status === "failed" || status === "cancelled" ? status : "pending";
}

/**
 * The output name of a metadata key: a key that is a fixed field is prefixed `meta.`, and so is a
 * key that already starts with `meta.`, which keeps the mapping one-to-one (`prompt` ->
 * `meta.prompt`, `meta.prompt` -> `meta.meta.prompt`).
 */
export function metadataField(key: string): string {
  return FIXED.has(key) || key.startsWith(META_PREFIX) ? `${META_PREFIX}${key}` : key;
}

/** The row's archived images; a row written before images were listed holds its first one's location only. */
function imageCount(row: RowRecord): number | null {
  if (row.images.length > 0) return row.images.length;
  return row.location === undefined ? null : 1;
}

/** A row's record as [field, value] pairs: fixed fields, then its metadata. */
function resultEntries(row: RowRecord): [string, CsvValue][] {
  const fixed: Record<(typeof RESULT_FIELDS)[number], CsvValue> = {
    id: row.id,
    line: row.line,
    prompt: row.prompt,
    status: resultStatus(row.status),
    taskId: row.taskId ?? null,
    location: row.location ?? null,
    bytes: row.bytes ?? null,
    sha256: row.sha256 ?? null,
    images: imageCount(row),
    credits: row.creditsSpent,
    creditsEstimated: row.estimatedCredits,
    uncertain: row.uncertain,
    error: row.error ?? null,
    reusedFrom: row.reusedFrom ?? null,
    model: modelOf(row.params),
    sourceImage: sourceImageOf(row.params)?.path ?? sourceImageOf(row.params)?.url ?? null,
    sourceSha256: sourceImageOf(row.params)?.sha256 ?? null,
  };
  const entries: [string, CsvValue][] = RESULT_FIELDS.map((field) => [field, fixed[field]]);
  for (const [key, value] of Object.entries(row.metadata)) entries.push([metadataField(key), value]);
  return entries;
}

/** Batches small writes into larger chunks and waits for `drain` when the stream is full. */
class ChunkWriter {
  private buffer = "";

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly chunkChars = 64 * 1024,
  ) {}

  async write(text: string): Promise<void> {
    this.buffer += text;
    if (this.buffer.length >= this.chunkChars) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buffer === "") return;
    const chunk = this.buffer;
    this.buffer = "";
    const stream = this.out as NodeJS.WritableStream & { destroyed?: boolean; errored?: Error | null };
    // A reader gone (`results | head`): stop, rather than wait for a drain that never comes.
    if (stream.destroyed) throw stream.errored ?? new Error("the output stream is closed");
    if (!stream.write(chunk)) await drained(stream);
  }
}

/** Resolves on `drain`; rejects when the stream errors or closes first. */
function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      stream.off("drain", onDrain);
      stream.off("error", onError);
      stream.off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => settle();
    const onError = (error: Error) => settle(error);
    const onClose = () => settle(new Error("the output stream closed"));
    stream.on("drain", onDrain);
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

export interface ResultsDeps {
  ledger: Pick<OpsLedger, "getBatch" | "listBatches" | "rows"> & Pick<Ledger, "columns">;
  queuePrefix?: string;
  /** Rows read per round trip. @defaultValue the ledger's (500) */
  pageSize?: number;
}

/** Streams the batch's records to `out` (which it does not end); returns how many were written. */
export async function writeResults(
  deps: ResultsDeps,
  batch: string,
  format: ResultsFormat,
  out: NodeJS.WritableStream,
): Promise<number> {
  const options = deps.pageSize === undefined ? {} : { pageSize: deps.pageSize };
  const writer = new ChunkWriter(out);
  let count = 0;
  if (format === "jsonl") {
    for await (const row of deps.ledger.rows(batch, options)) {
      await writer.write(`${JSON.stringify(Object.fromEntries(resultEntries(row)))}\n`);
      count++;
    }
    await writer.flush();
    return count;
  }
  const metaKeys = (await deps.ledger.columns(batch)) ?? (await readColumns(deps, batch, options));
  await writer.write(csvLine([...RESULT_FIELDS, ...metaKeys.map(metadataField)]));
  for await (const row of deps.ledger.rows(batch, options)) {
    const fixed = resultEntries(row)
      .slice(0, RESULT_FIELDS.length)
      .map(([, value]) => value);
    await writer.write(csvLine([...fixed, ...metaKeys.map((key) => row.metadata[key] ?? null)]));
    count++;
  }
  await writer.flush();
  return count;
}

/** A batch recorded before the ledger kept its columns: the union over its rows, first seen first. */
async function readColumns(
  deps: ResultsDeps,
  batch: string,
  options: { pageSize?: number },
): Promise<string[]> {
  const columns = new Set<string>();
  for await (const row of deps.ledger.rows(batch, options)) {
    for (const key of Object.keys(row.metadata)) columns.add(key);
  }
  return [...columns];
}

export interface ExportOptions {
  batch: string;
  format: ResultsFormat;
  /** Write here atomically (temp file + rename); else to `stdout`. */
  outFile?: string;
  stdout: NodeJS.WritableStream;
}

/** The whole command: checks the batch first, so an unknown one never leaves a file behind. */
export async function exportResults(deps: ResultsDeps, options: ExportOptions): Promise<number> {
  await requireBatch(deps.ledger, options.batch, deps.queuePrefix);
  if (options.outFile === undefined) return writeResults(deps, options.batch, options.format, options.stdout);
  return writeFileAtomically(options.outFile, (stream) =>
    writeResults(deps, options.batch, options.format, stream),
  );
}
