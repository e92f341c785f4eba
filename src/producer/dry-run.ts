import { ExistingRowCounter } from "./existing-rows.js";
import { InFileIds } from "./in-file-ids.js";
import { DRY_RUN_REDIS_TIMEOUT_MS } from "./limits.js";
import { validatePass } from "./pass.js";
import { FileReport } from "./report.js";
import { idConflictError, progress, type Run, summarise } from "./run.js";
import type { EnqueueSummary, ProducerBackend } from "./types.js";

/**
 * `enqueue --dry-run`: one pass that validates and estimates, writing nothing. Where Redis answers
 * it also counts the rows the batch holds and the rows the result index would give (reuse); what
 * the enqueue would find through the ledger it finds too: ids repeated in the file (in memory,
 * in-file-ids.ts) and given ids the batch holds for another request (read back).
 */
export async function dryRun(run: Run): Promise<EnqueueSummary> {
  const { manifest, validate, deps, resolved } = run;
  let backend: ProducerBackend | undefined;
  let redisNote: string | undefined;
  try {
    backend = await deps.connect({ timeoutMs: DRY_RUN_REDIS_TIMEOUT_MS });
  } catch (error) {
    redisNote = error instanceof Error ? error.message : String(error);
  }
  try {
    const report = new FileReport();
    // With --no-reuse, or a batch enqueued with it before (it stays set), no row would be reused:
    // the result index is not asked.
    const noReuse =
      run.options.noReuse === true ||
      (backend !== undefined && (await backend.ledger.getBatch(resolved.batch))?.noReuse === true);
    const counted: Pick<ProducerBackend, "rowsExist" | "resultsExist"> | undefined =
      backend && noReuse ? { rowsExist: (batch, ids) => backend.rowsExist(batch, ids) } : backend;
    let idCheckFailures = 0;
    const counter = counted
      ? new ExistingRowCounter({ ...counted, ledger: backend!.ledger }, resolved.batch, undefined, {
          onIdConflict: (row, held) =>
            report.invalidAfterAll(
              idConflictError(
                manifest.file,
                row,
                `is already a row of batch ${resolved.batch} (line ${held.line} of the enqueue that added it)`,
                "enqueue would not add this row",
              ),
            ),
          onIdCheckFailed: (error) => {
            if (idCheckFailures++ > 0) return;
            report.warn(
              `the rows whose id the batch already holds could not all be read back (${error instanceof Error ? error.message : String(error)}): those were counted as already in the batch without checking that their prompt and parameters match`,
            );
          },
        })
      : undefined;
    // What the enqueue finds through the ledger, found here in memory: ids repeated in the file.
    const inFile = new InFileIds();
    let inFileConflicts = 0;
    let inFileConflictCredits = 0;
    await validatePass(manifest, {
      validate,
      report,
      onValid: (row) => {
        const seen = inFile.check(row);
        if (seen === "first") return counter?.add(row);
        if (seen !== "repeat") {
          inFileConflicts++;
          inFileConflictCredits += row.estimatedCredits;
          report.invalidAfterAll(
            idConflictError(
              manifest.file,
              row,
              `is already the id of line ${seen.conflictLine} of this file`,
              "enqueue would not add this row",
            ),
          );
        }
        return undefined;
      },
      progress: progress(run, "checking"),
    });
    await counter?.finish();
    return summarise(run, report, {
      repeatedInFile: inFile.repeats,
      duplicatesWithoutId: inFile.repeatsWithoutId,
      idConflicts: inFileConflicts + (counter?.idConflicts ?? 0),
      ...(counter
        ? {
            alreadyInBatch: counter.existing,
            estimatedCredits: counter.newCredits,
            ...(counted?.resultsExist === undefined ? {} : { reusable: counter.reusable }),
          }
        : {
            estimatedCredits: report.validCredits - inFile.repeatCredits - inFileConflictCredits,
          }),
      ...(redisNote === undefined ? {} : { redisNote }),
      strictRejected: run.options.strict === true && report.invalidRows > 0,
    });
  } finally {
    await backend?.close();
  }
}
