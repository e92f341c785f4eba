import { type ArchiveDeps, type ArchiveRun, archiveRow, STORE_REFUSED } from "./archive.js";
import type { ArchiveJob } from "./jobs.js";
import type { ArchiveInline, ArchiveSlots, InlineArchiveOutcome, StageDeps } from "./ports.js";

/**
 * Archiving in the poll job (issue 10): a row whose task is done is archived by the job that found
 * it so, instead of by an archive job of its own, which costs its round trips and BullMQ's client
 * work again. Only when this process runs the archive stage, one of its slots is free and
 * archiving is not paused; any other outcome hands the row to the archive stage as before, so a
 * row never waits on the poll job for anything but its own archive.
 */

/** `capacity` slots, counted in this process only (archive stage jobs plus inline archives). */
export function archiveSlots(capacity: number): ArchiveSlots {
  let inUse = 0;
  const take = () => {
    inUse++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      inUse--;
    };
  };
  return {
    take,
    tryTake: () => (inUse < capacity ? take() : undefined),
  };
}

/**
 * `deps` with the archive stage's slots (`capacity`: the stage's concurrency) and the poll's inline
 * archiver built on them. `capacity` 0 (the process does not run the archive stage): as given.
 */
export function withInlineArchive(deps: StageDeps, capacity: number): StageDeps {
  if (capacity <= 0) return deps;
  const slots = archiveSlots(capacity);
  const full: StageDeps = {
    ...deps,
    archiveSlots: slots,
    archiveInline: (data, job, row) => archiveInline(full, slots, data, job, row),
  };
  return full;
}

/**
 * One archive of `data`'s row by the archive stage's own `archiveRow`, in the caller's job. Never
 * waits: no free slot, or archiving paused, and the row is handed off at once; a try that answers
 * a retry hands off its next try with its delay; a store that refused (archiveRow has paused
 * archiving) or an error hands off the same data. Only an abort is thrown: the poll job is then
 * released and its next run finds the row `archiving` and adds the archive job (poll-archiving.ts).
 */
export async function archiveInline(
  deps: ArchiveDeps,
  slots: ArchiveSlots,
  data: ArchiveJob,
  job: Parameters<ArchiveInline>[1],
  row?: Parameters<ArchiveInline>[2],
): Promise<InlineArchiveOutcome> {
  const handOff = { handOff: data, delayMs: 0 };
  const release = slots.tryTake();
  if (!release) return handOff;
  try {
    // Read as the gate reads it, without waiting there: paused, the archive job waits instead.
    if (await deps.storePause.get()) return handOff;
    const run: ArchiveRun = {
      data,
      signal: job.signal,
      // The caller's logger (its stage and job: the poll's), made only when a line is written.
      get log() {
        return job.log;
      },
    };
    const result = await archiveRow(run, deps, row);
    if (result === STORE_REFUSED) return handOff;
    if (result.kind === "delay") return { handOff: result.data, delayMs: result.ms };
    return "done";
  } catch (error) {
    if (job.signal.aborted) throw error;
    job.log.warn({ err: error }, "archiving in the poll job failed; the archive stage takes the row");
    return handOff;
  } finally {
    release();
  }
}
