import type { Manifest, ManifestRow, RawRow, RowError, RowResult } from "../manifest/index.js";
import type { ResolvedOptions } from "./options.js";
import { progressLine } from "./progress.js";
import type { FileReport } from "./report.js";
import type { EnqueueDeps, EnqueueOptions, EnqueueSummary } from "./types.js";

/** What both modes of `enqueue` (enqueue.ts, dry-run.ts) share: the run, its summary, its messages. */

/** What both modes work from once the options are checked and the file is open. */
export interface Run {
  options: EnqueueOptions;
  resolved: ResolvedOptions;
  manifest: Manifest;
  validate: (raw: RawRow) => RowResult;
  deps: EnqueueDeps;
  started: number;
}

/** A row whose given id another row holds with another prompt or other parameters. */
export function idConflictError(
  file: string,
  row: Pick<ManifestRow, "id" | "line">,
  held: string,
  outcome: string,
): RowError {
  return {
    file,
    line: row.line,
    field: "id",
    message: `"${row.id}" ${held} with another prompt or other parameters: ${outcome}; give it an id of its own`,
  };
}

export function progress(run: Run, label: string) {
  return progressLine(run.deps.progress, run.deps.clock, label);
}

/** The summary from a pass's report and what the mode adds to it. */
export function summarise(run: Run, report: FileReport, extra: Partial<EnqueueSummary>): EnqueueSummary {
  const { options, resolved, manifest, deps } = run;
  const strictRejected = extra.strictRejected ?? false;
  return {
    batch: resolved.batch,
    file: manifest.file,
    format: manifest.format,
    dryRun: options.dryRun === true,
    strict: options.strict === true,
    total: report.total,
    valid: report.valid,
    enqueued: 0,
    duplicates: 0,
    duplicatesWithoutId: 0,
    idConflicts: 0,
    invalidRows: report.invalidRows,
    errors: report.errors,
    moreErrors: report.moreErrors,
    warnings: report.warnings,
    estimatedCredits: 0,
    priority: resolved.priority,
    ...(resolved.budget === undefined ? {} : { budget: resolved.budget }),
    elapsedMs: deps.clock.now() - run.started,
    ...extra,
    strictRejected,
    exitCode: strictRejected || report.valid === 0 ? 2 : 0,
  };
}
