import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";

/** Steps between two progress lines in the log (500 rows a step: 50,000 rows). */
const LOG_EVERY_STEPS = 100;

export interface HousekeepDeps {
  ledger: Pick<Ledger, "listBatches" | "housekeep">;
  log: Logger;
}

/**
 * The per-batch housekeeping left over by the transitions that finished or reopened a batch
 * (they take one page; a batch of a million rows needs two thousand): every batch with a walk
 * pending is stepped on to the end, its progress kept in its hash after every page, so a sweep cut
 * short (the worker stopped, the lease lost) is resumed by the next one, on any worker.
 * `keepGoing` (the caller's lease) is asked between pages. A batch whose walk fails is logged and
 * passed over (the next sweep tries again). True when every batch's walk is done.
 */
export async function housekeepAll(
  deps: HousekeepDeps,
  keepGoing: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  let complete = true;
  for (const { batch, total } of await deps.ledger.listBatches()) {
    let steps = 0;
    let progress: Awaited<ReturnType<HousekeepDeps["ledger"]["housekeep"]>>;
    try {
      progress = await deps.ledger.housekeep(batch, {
        keepGoing,
        onStep: (step) => {
          steps++;
          if (steps % LOG_EVERY_STEPS === 0) {
            deps.log.info(
              { batch, mode: step.mode, done: step.done, total },
              `housekeeping: batch ${batch}: ${step.mode === "expire" ? "expiry set on" : "expiry removed from"} ${step.done} of ${total} rows`,
            );
          }
        },
      });
    } catch (error) {
      // One batch's failure (a Redis error) does not keep the others from their housekeeping.
      deps.log.warn({ err: error, batch }, `housekeeping: batch ${batch} failed; the next sweep tries again`);
      complete = false;
      if (!(await keepGoing())) return false;
      continue;
    }
    // One step that found nothing to do is the usual case: say nothing.
    if (steps > 1 && progress.complete) {
      deps.log.info(
        { batch, mode: progress.mode, done: progress.done, total },
        `housekeeping: batch ${batch}: ${progress.mode === "expire" ? "expiry set on" : "expiry removed from"} all ${progress.done} rows`,
      );
    }
    if (!progress.complete) return false;
  }
  return complete;
}

export interface FreezeAllDeps {
  ledger: Pick<Ledger, "listBatches" | "freeze">;
  log: Logger;
  /** "Now" against the rows' stamps (the reconciler's server clock). Absent: the ledger's. */
  clock?: { now(): number };
}

/**
 * Freezes every batch's settled archived rows (ledger/freeze.ts: their hashes and bodies
 * compressed a page of 64 rows into one key, about a fifth of the bytes), from where each batch's
 * last walk stopped to its first page not ready yet. `settleMs`: an archived row is frozen once it
 * has not changed for this long. `keepGoing` (the caller's lease) is asked between pages; a failing
 * batch is logged and passed over. True when every batch was walked to its end.
 */
export async function freezeAll(
  deps: FreezeAllDeps,
  settleMs: number,
  keepGoing: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  let complete = true;
  for (const { batch } of await deps.ledger.listBatches()) {
    try {
      const progress = await deps.ledger.freeze(batch, {
        settleMs,
        keepGoing,
        ...(deps.clock ? { clock: deps.clock } : {}),
      });
      if (progress.frozen > 0) {
        deps.log.info(
          { batch, frozen: progress.frozen, pages: progress.pages },
          `housekeeping: batch ${batch}: ${progress.frozen} archived rows frozen`,
        );
      }
      if (!progress.complete) complete = false;
    } catch (error) {
      deps.log.warn(
        { err: error, batch },
        `housekeeping: batch ${batch}: freezing failed; the next sweep tries again`,
      );
      complete = false;
      if (!(await keepGoing())) return false;
    }
    // A walk asks `keepGoing` before each of its steps: a lost lease stops the next one at once.
  }
  return complete;
}
