import type { Manifest, ManifestRow, RawRow, RowResult } from "../manifest/index.js";
import type { ProgressLine } from "./progress.js";
import type { FileReport } from "./report.js";

/**
 * The two passes. The first reads the manifest: a file that cannot be parsed throws its
 * ManifestParseError from there, after the rows before the fault, so that pass must write
 * nothing to Redis. The second hands already-validated rows to the writer.
 */

export interface ValidatePassOptions {
  validate: (raw: RawRow) => RowResult;
  /** Counts, errors and warnings are added here. */
  report: FileReport;
  /**
   * Called with each valid row, in file order. When it returns a promise (a chunk is being
   * written and the pipeline is full), the pass waits for it before reading on.
   */
  onValid?: (row: ManifestRow) => Promise<void> | undefined;
  progress: ProgressLine;
}

/** Validates every row into `report`, handing the valid ones to `onValid`. */
export async function validatePass(manifest: Manifest, options: ValidatePassOptions): Promise<void> {
  const { validate, report, onValid, progress } = options;
  try {
    for await (const batch of manifest.batches()) {
      for (const raw of batch) {
        const row = report.add(validate(raw));
        if (row !== undefined && onValid !== undefined) {
          const wait = onValid(row);
          if (wait !== undefined) await wait;
        }
      }
      progress.update(report.total);
    }
  } finally {
    progress.done();
  }
}

/** Something that takes rows and may ask the caller to wait (a full write window, a slow disk). */
export interface RowSink<Row> {
  add(row: Row): Promise<void> | undefined;
}

/** Hands every row of every batch to `sink`, in order, waiting whenever it asks to. */
export async function writePass<Row>(
  batches: AsyncIterable<readonly Row[]>,
  sink: RowSink<Row>,
  progress: ProgressLine,
): Promise<void> {
  let count = 0;
  try {
    for await (const batch of batches) {
      for (const row of batch) {
        const wait = sink.add(row);
        if (wait !== undefined) await wait;
      }
      count += batch.length;
      progress.update(count);
    }
  } finally {
    progress.done();
  }
}
