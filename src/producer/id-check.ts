import type { ManifestRow } from "../manifest/index.js";
import { StrictCheckError } from "./errors.js";
import { type CounterBackend, ExistingRowCounter } from "./existing-rows.js";
import { InFileIds } from "./in-file-ids.js";
import type { FileReport } from "./report.js";
import { idConflictError } from "./run.js";

/**
 * Before anything is written (a dry run, `--strict`'s first pass): what the enqueue will find of
 * each valid row's id as it writes, found now. An id repeated in the file asking the same is a
 * duplicate, asking another request (its id given) an error of that row; a row under an id the
 * batch holds is compared with the batch's row (`counter`, when Redis answers), as the enqueue
 * compares it. Errors go to `report`, counts stay here.
 */
export class IdCheck {
  /** Rows a duplicate of an earlier row of the file (not of the batch's). */
  repeats = 0;
  /** Of `repeats`, rows without an id of their own. */
  repeatsWithoutId = 0;
  /** Upper-bound credits of `repeats` and `inFileConflicts`' rows: never enqueued. */
  leftOutCredits = 0;
  /** Rows whose given id an earlier row of the file holds for another request. */
  inFileConflicts = 0;
  readonly counter: ExistingRowCounter | undefined;
  private readonly ids = new InFileIds();
  private checkFailures = 0;

  constructor(
    private readonly options: {
      file: string;
      batch: string;
      report: FileReport;
      /** What the enqueue does with a conflicting row, for the message ("enqueue would not add this row"). */
      outcome: string;
      /** Asks the batch (Redis answered): its rows, and the result index when given. */
      backend?: CounterBackend;
      /**
       * `--strict`: rows the batch holds that cannot be read back stop the check (StrictCheckError)
       * instead of counting as held with a warning: it cannot promise there is no conflict.
       */
      strict?: boolean;
    },
  ) {
    const { file, batch, report, outcome, backend } = options;
    this.counter =
      backend &&
      new ExistingRowCounter(backend, batch, undefined, {
        onIdConflict: (row, held) =>
          report.invalidAfterAll(
            idConflictError(
              file,
              row,
              `is already a row of batch ${batch} (line ${held.line} of the enqueue that added it)`,
              outcome,
            ),
          ),
        onIdCheckFailed: (error) => {
          if (options.strict) throw new StrictCheckError(batch, error);
          if (this.checkFailures++ > 0) return;
          report.warn(
            `the rows whose id the batch already holds could not all be read back (${error instanceof Error ? error.message : String(error)}): those were counted as already in the batch without checking that their prompt and parameters match`,
          );
        },
        onRepeat: (row) => this.repeat(row),
        onInFileConflict: (row, line) => this.inFileConflict(row, line),
      });
  }

  /** Takes a valid row, in file order; may ask the caller to wait (the counter's reads). */
  add(row: ManifestRow): Promise<void> | undefined {
    const seen = this.ids.check(row);
    if (this.counter) return this.counter.add(row, seen);
    if (seen === "repeat") this.repeat(row);
    else if (seen !== "first") this.inFileConflict(row, seen.conflictLine);
    return undefined;
  }

  async finish(): Promise<void> {
    await this.counter?.finish();
  }

  /** Every id conflict found: in the file, and with the batch. */
  get idConflicts(): number {
    return this.inFileConflicts + (this.counter?.idConflicts ?? 0);
  }

  private repeat(row: ManifestRow): void {
    this.repeats++;
    if (!row.idGiven) this.repeatsWithoutId++;
    this.leftOutCredits += row.estimatedCredits;
  }

  private inFileConflict(row: ManifestRow, line: number): void {
    this.inFileConflicts++;
    this.leftOutCredits += row.estimatedCredits;
    const { file, report, outcome } = this.options;
    report.invalidAfterAll(
      idConflictError(file, row, `is already the id of line ${line} of this file`, outcome),
    );
  }
}
