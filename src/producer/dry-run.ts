import { batchPurgingError } from "../ledger/index.js";
import { IdCheck } from "./id-check.js";
import { DRY_RUN_REDIS_TIMEOUT_MS } from "./limits.js";
import { validatePass } from "./pass.js";
import { FileReport } from "./report.js";
import { progress, type Run, summarise } from "./run.js";
import type { EnqueueSummary, ProducerBackend } from "./types.js";

/**
 * `enqueue --dry-run`: one pass that validates and estimates, writing nothing. Where Redis answers
 * it also counts the rows the batch holds and the rows the result index would give (reuse); what
 * the enqueue would find through the ledger it finds too (id-check.ts): ids repeated in the file
 * and given ids the batch holds for another request.
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
    const existing = backend === undefined ? undefined : await backend.ledger.getBatch(resolved.batch);
    // A batch a purge marked: the enqueue would be refused, and so is its dry run.
    if (existing?.purging !== undefined) throw batchPurgingError(resolved.batch, existing.purging);
    // With --no-reuse, or a batch enqueued with it before (it stays set), no row would be reused:
    // the result index is not asked.
    const noReuse = run.options.noReuse === true || existing?.noReuse === true;
    const counted: Pick<ProducerBackend, "rowsExist" | "resultsExist"> | undefined =
      backend && noReuse ? { rowsExist: (batch, ids) => backend.rowsExist(batch, ids) } : backend;
    // What the enqueue finds through the ledger as it writes: ids repeated in the file, and given
    // ids the batch holds for another request.
    const ids = new IdCheck({
      file: manifest.file,
      batch: resolved.batch,
      report,
      outcome: "enqueue would not add this row",
      // As the enqueue's --strict: rows the batch holds that cannot be read back stop the check.
      strict: run.options.strict === true,
      ...(counted ? { backend: { ...counted, ledger: backend!.ledger } } : {}),
    });
    await validatePass(manifest, {
      validate,
      report,
      onValid: (row) => ids.add(row),
      progress: progress(run, "checking"),
    });
    await ids.finish();
    const { counter } = ids;
    return summarise(run, report, {
      repeatedInFile: ids.repeats,
      duplicatesWithoutId: ids.repeatsWithoutId,
      idConflicts: ids.idConflicts,
      ...(counter
        ? {
            alreadyInBatch: counter.existing,
            estimatedCredits: counter.newCredits,
            ...(counted?.resultsExist === undefined ? {} : { reusable: counter.reusable }),
          }
        : { estimatedCredits: report.validCredits - ids.leftOutCredits }),
      ...(redisNote === undefined ? {} : { redisNote }),
      strictRejected: run.options.strict === true && report.invalidRows > 0,
    });
  } finally {
    await backend?.close();
  }
}
