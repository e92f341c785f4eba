/**
 * `enqueue`: a manifest in, one ledger record and one submit job per new row out.
 *
 * Two passes. The first reads and validates the whole manifest and writes nothing to Redis: a
 * file broken at row 900,000 (or, with `strict`, one invalid row) enqueues nothing. Its valid
 * rows go to a spool file; the second pass writes them in chunks, ledger first, then BullMQ.
 * Only counts, the first errors and distinct warnings stay in memory, so memory does not grow
 * with the file; stdin is spooled to a temporary file first (it may need a format guess).
 */

import { dirname, resolve } from "node:path";
import { batchPurgingError, LedgerError } from "../ledger/index.js";
import {
  createRowValidator,
  openManifest,
  type RawRow,
  type RowResult,
  SetUsage,
} from "../manifest/index.js";
import { ChunkWriter } from "./chunk-writer.js";
import { dryRun } from "./dry-run.js";
import { EnqueueInterruptedError } from "./errors.js";
import { IdCheck } from "./id-check.js";
import { resolveOptions } from "./options.js";
import { validatePass, writePass } from "./pass.js";
import { FileReport } from "./report.js";
import { RowSpool } from "./row-spool.js";
import { idConflictError, progress, type Run, summarise } from "./run.js";
import { guessFormat, spoolToTempFile } from "./spool.js";
import { formatSummaryText, summaryJson } from "./summary-text.js";
import type { EnqueueDeps, EnqueueOptions, EnqueueSummary } from "./types.js";

/**
 * Validates the manifest and enqueues its valid rows into the batch (with `dryRun`, only
 * validates and estimates), prints the summary to `deps.out`, and returns it.
 *
 * Throws ManifestOptionError for a bad option (stdin without `batch`, say), ManifestParseError
 * for a file that cannot be parsed (nothing is enqueued then), whatever `deps.connect` throws
 * when Redis does not answer (not for a dry run, which goes on without it), and
 * EnqueueInterruptedError when writing stopped part-way.
 */
export async function enqueue(options: EnqueueOptions, deps: EnqueueDeps): Promise<EnqueueSummary> {
  const started = deps.clock.now();
  const resolved = resolveOptions(options);
  const spooled =
    options.file === "-" ? await spoolToTempFile(deps.stdin ?? process.stdin, deps.tmpDir) : undefined;
  try {
    const path = spooled?.path ?? options.file;
    const format = options.format ?? (spooled ? await guessFormat(path) : undefined);
    const manifest = await openManifest(path, {
      ...(format === undefined ? {} : { format }),
      displayName: options.file,
    });
    const check = createRowValidator({
      file: manifest.file,
      sets: resolved.sets,
      defaults: manifest.defaults,
      ...(manifest.defaultsLine === undefined ? {} : { defaultsLine: manifest.defaultsLine }),
      // Local input images are read relative to the manifest's own folder (stdin has none).
      ...(options.file === "-" ? {} : { baseDir: dirname(resolve(options.file)) }),
      allowPaths: (options.allowPaths ?? []).map((dir) => resolve(dir)),
      ...(options.apiFlavor === undefined ? {} : { apiFlavor: options.apiFlavor }),
      ...(options.prices === undefined ? {} : { prices: options.prices }),
    });
    const setUsage = new SetUsage(resolved.sets);
    const validate = (raw: RawRow): RowResult => {
      const result = check(raw);
      setUsage.add(result);
      return result;
    };
    const run: Run = { options, resolved, manifest, validate, deps, started };
    const summary = options.dryRun ? await dryRun(run) : await enqueueRows(run);
    // On stderr, before the summary (whose last line says what to run next), so `--json`'s
    // stdout stays one object; that object lists them with the file's own warnings.
    const setWarnings = setUsage.warnings();
    const stderr = deps.stderr ?? process.stderr;
    for (const line of setWarnings) stderr.write(`warning: ${line}\n`);
    const json = () => summaryJson({ ...summary, warnings: [...summary.warnings, ...setWarnings] });
    deps.out.write(options.json ? `${JSON.stringify(json())}\n` : formatSummaryText(summary));
    return summary;
  } finally {
    await spooled?.remove();
  }
}

async function enqueueRows(run: Run): Promise<EnqueueSummary> {
  const { options, resolved, manifest, validate, deps } = run;
  const { batch } = resolved;
  const backend = await deps.connect({});
  const spool = await RowSpool.create(deps.tmpDir);
  try {
    // A batch `purge` marked is refused before the file is read (add-rows.lua refuses it too).
    const existing = await backend.ledger.getBatch(batch);
    if (existing?.purging !== undefined) throw batchPurgingError(batch, existing.purging);
    // Pass 1 writes nothing to Redis: valid rows go to the spool, counts and errors to the report.
    // With --strict it also finds the id conflicts the write would meet (id-check.ts: reads only),
    // so that a file with one is refused whole, before a row is written.
    const report = new FileReport();
    const ids = options.strict
      ? new IdCheck({
          file: manifest.file,
          batch,
          report,
          outcome: "--strict adds no row of this file",
          strict: true,
          backend: { rowsExist: (name, rowIds) => backend.rowsExist(name, rowIds), ledger: backend.ledger },
        })
      : undefined;
    await validatePass(manifest, {
      validate,
      report,
      onValid: (row) => {
        const written = spool.write(row);
        const checked = ids?.add(row);
        return checked === undefined ? written : Promise.all([written, checked]).then(() => undefined);
      },
      progress: progress(run, "checking"),
    });
    await spool.finish();
    await ids?.finish();
    if (options.strict && report.invalidRows > 0) {
      return summarise(run, report, { strictRejected: true, idConflicts: ids?.idConflicts ?? 0 });
    }

    let idCheckFailures = 0;
    const writer = new ChunkWriter({
      backend,
      batch,
      file: options.file === "-" ? "(stdin)" : options.file,
      priority: resolved.priority,
      ...(options.priority === undefined ? {} : { priorityGiven: true }),
      ...(resolved.budget === undefined ? {} : { budget: resolved.budget }),
      ...(options.noReuse === true ? { noReuse: true } : {}),
      ...(existing === undefined ? {} : { appending: true }),
      onIdConflict: (row, held) =>
        report.invalidAfterAll(
          idConflictError(
            manifest.file,
            row,
            `is already a row of batch ${batch} (line ${held.line} of the enqueue that added it)`,
            "this row was not added",
          ),
        ),
      onIdCheckFailed: (error) => {
        // Said once a run: the first failure's reason stands for the rest.
        if (idCheckFailures++ > 0) return;
        report.warn(
          `the rows whose id the batch already held could not all be read back (${error instanceof Error ? error.message : String(error)}): those were counted as duplicates without checking that their prompt and parameters match`,
        );
      },
    });
    let budgetSet: boolean;
    try {
      await writePass(spool.batches(), writer, progress(run, "enqueuing"));
      budgetSet = await writer.finish();
    } catch (error) {
      await writer.abandon();
      // A purge met on the way: its own message says what to do (no "run it again for the rest").
      if (writer.chunks === 0 || isBatchDeleting(error)) throw error;
      throw new EnqueueInterruptedError(batch, writer.enqueued, error);
    }
    const after = await backend.ledger.getBatch(batch);
    return summarise(run, report, {
      enqueued: writer.enqueued,
      duplicates: writer.duplicates,
      duplicatesWithoutId: writer.duplicatesWithoutId,
      idConflicts: writer.idConflicts,
      estimatedCredits: writer.credits,
      budgetNotSet: !budgetSet,
      ...(after === undefined
        ? {}
        : { batchTotal: after.total, batchEstimatedCredits: after.creditsEstimated }),
    });
  } finally {
    await spool.remove();
    await backend.close();
  }
}

function isBatchDeleting(error: unknown): boolean {
  return error instanceof LedgerError && (error.code === "batch_purging" || error.code === "batch_gone");
}
