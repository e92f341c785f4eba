import type { ManifestRow, RowError, RowResult } from "../manifest/index.js";
import { MAX_REPORTED_ERRORS, MAX_WARNINGS } from "./limits.js";

/**
 * What a pass over the file found, in constant memory: counts, the first row errors and the
 * distinct warnings. Rows themselves are never kept.
 */
export class FileReport {
  /** Every row read. */
  total = 0;
  valid = 0;
  invalidRows = 0;
  /** Upper-bound credits of the valid rows. */
  validCredits = 0;
  readonly errors: RowError[] = [];
  /** Row errors, listed or not. */
  errorCount = 0;
  private readonly warningSet = new Set<string>();
  private warningsDropped = false;

  /** Counts one validated row; returns the row when it is valid. */
  add(result: RowResult): ManifestRow | undefined {
    this.total++;
    for (const warning of result.warnings) this.warn(warning);
    if (result.ok) {
      this.valid++;
      this.validCredits += result.row.estimatedCredits;
      return result.row;
    }
    this.invalidRows++;
    for (const error of result.errors) this.listError(error);
    return undefined;
  }

  /**
   * A row counted valid that the write found invalid after all (its given id is another row's in
   * the batch): counted and listed as a row error.
   */
  invalidAfterAll(error: RowError): void {
    this.valid--;
    this.invalidRows++;
    this.listError(error);
  }

  /** Errors counted but not listed. */
  get moreErrors(): number {
    return this.errorCount - this.errors.length;
  }

  /** Distinct warnings in the order first seen, with a last line when some were dropped. */
  get warnings(): string[] {
    const list = [...this.warningSet];
    if (this.warningsDropped) list.push(`more warnings not shown (only the first ${MAX_WARNINGS} are kept)`);
    return list;
  }

  /** Counts an error, listing it among the first `MAX_REPORTED_ERRORS`. */
  private listError(error: RowError): void {
    this.errorCount++;
    if (this.errors.length < MAX_REPORTED_ERRORS) this.errors.push(error);
  }

  /** A warning, listed once however often it comes (the file's, or one found while writing). */
  warn(warning: string): void {
    if (this.warningSet.has(warning)) return;
    if (this.warningSet.size >= MAX_WARNINGS) this.warningsDropped = true;
    else this.warningSet.add(warning);
  }
}
