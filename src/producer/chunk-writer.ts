import type { AddRowOutcome, AddRowsMeta } from "../ledger/index.js";
import { ENQUEUE_CHUNK, ENQUEUE_CHUNK_CHARS, FEED_RECHECK_CHUNKS, MAX_CHUNKS_IN_FLIGHT } from "./limits.js";
import type { QueuedRow } from "./row-spool.js";
import { heldConflicts } from "./same-request.js";
import type { ProducerBackend } from "./types.js";
import { InFlightWindow } from "./window.js";

export interface ChunkWriterOptions {
  backend: ProducerBackend;
  batch: string;
  /** Recorded on the batch (kept from the first enqueue that names one). */
  file: string;
  /** Set on the batch atomically with the first chunk. @defaultValue unchanged */
  budget?: number;
  priority: number;
  /**
   * `--priority` was given: it replaces the priority a window-managed batch keeps for its fed
   * jobs. Without it the batch keeps its own (the first enqueue's). @defaultValue false
   */
  priorityGiven?: boolean;
  /** `--no-reuse`: recorded on the batch atomically with the first chunk. @defaultValue false */
  noReuse?: boolean;
  /**
   * The batch existed when the run began (rows appended to it): the first chunk too adds only to
   * it, so a purge meanwhile is refused, not answered with a batch made anew without its budget.
   * @defaultValue false
   */
  appending?: boolean;
  /** @defaultValue ENQUEUE_CHUNK */
  chunkSize?: number;
  /** @defaultValue ENQUEUE_CHUNK_CHARS */
  chunkChars?: number;
  /** @defaultValue MAX_CHUNKS_IN_FLIGHT */
  maxInFlight?: number;
  /**
   * Told of each row with a given id that the batch already holds for another prompt or other
   * parameters (`line`: the held row's manifest line): that row is not added, nor counted a duplicate.
   */
  onIdConflict?: (row: QueuedRow, held: { line: number }) => void;
  /** Told when the rows an id check needed could not be read (they count as duplicates then). */
  onIdCheckFailed?: (error: unknown) => void;
}

/**
 * Writes valid rows in chunks: each chunk is recorded in the ledger first, then its submit jobs
 * are added (in a window-managed batch, only the first window's: the rest are held, see
 * worker/submit-window.ts). Order matters for healing: a row the ledger holds as still `queued`
 * (and due a job) gets its job added again on every enqueue (BullMQ keeps an existing jobId as
 * it is), so a crash between the two writes loses nothing, and a row is never queued without its
 * ledger record.
 */
export class ChunkWriter {
  /** Rows the ledger recorded as new, and queued. */
  enqueued = 0;
  /** Rows the ledger already held (from an earlier run or earlier in this file). */
  duplicates = 0;
  /** Of `duplicates`, rows whose id was derived from prompt and parameters. */
  duplicatesWithoutId = 0;
  /** Rows whose given id the batch holds for another request (`onIdConflict`). */
  idConflicts = 0;
  /** Upper-bound credits of the rows enqueued. */
  credits = 0;
  /** Chunks handed to the ledger. */
  chunks = 0;
  private buffer: QueuedRow[] = [];
  /** The buffered rows' prompts and metadata, in characters. */
  private bufferChars = 0;
  private readonly chunkChars: number;
  private readonly window: InFlightWindow;
  private readonly chunkSize: number;
  private firstRecord: Promise<unknown> | undefined;
  /** Feeds run one after another, so each decides on what the one before it found. */
  private feeds: Promise<void> = Promise.resolve();
  /** Held rows this writer recorded, and rows its feeds gave jobs. */
  private heldRecorded = 0;
  private heldFed = 0;
  /** The last feed left rows held: the window had no room (or the budget none). */
  private windowFull = false;
  /** Chunks of held rows whose feed was skipped since the last feed. */
  private skippedFeeds = 0;
  /** Rows the batch had already (a run again): its window may be unfed (a first run killed before its feed). */
  private sawKnown = false;

  constructor(private readonly options: ChunkWriterOptions) {
    this.chunkSize = options.chunkSize ?? ENQUEUE_CHUNK;
    this.chunkChars = options.chunkChars ?? ENQUEUE_CHUNK_CHARS;
    this.window = new InFlightWindow(options.maxInFlight ?? MAX_CHUNKS_IN_FLIGHT);
  }

  /** Takes a valid row; returns a promise to wait for when a chunk went out and the window is full. */
  add(row: QueuedRow): Promise<void> | undefined {
    this.buffer.push(row);
    this.bufferChars += longValuesChars(row);
    return this.buffer.length >= this.chunkSize || this.bufferChars >= this.chunkChars
      ? this.flush()
      : undefined;
  }

  /**
   * Writes what is left and waits for every chunk. When no row was written, a budget is set on
   * its own; returns false when that found no batch to set it on.
   */
  async finish(): Promise<boolean> {
    await this.flush();
    await this.window.drain();
    // Rows recorded while the window was full: one feed for them, now that all are recorded. And
    // one for a run again of a file whose first run was killed between its rows and their feed:
    // its rows are all duplicates now, and the window would wait for the reconciler's sweep.
    if (this.skippedFeeds > 0 || (this.heldRecorded === 0 && this.sawKnown)) await this.feed();
    if (this.chunks === 0 && this.options.budget !== undefined) {
      return this.options.backend.ledger.setBudget(this.options.batch, this.options.budget);
    }
    return true;
  }

  /** After a failure: drops rows not yet handed over and waits for the chunks in flight. */
  async abandon(): Promise<void> {
    this.buffer = [];
    this.bufferChars = 0;
    await this.window.drain().catch(() => undefined);
  }

  private flush(): Promise<void> {
    if (this.buffer.length === 0) return Promise.resolve();
    const rows = this.buffer;
    this.buffer = [];
    this.bufferChars = 0;
    return this.window.push(this.write(rows));
  }

  private async write(rows: QueuedRow[]): Promise<void> {
    const { backend, batch, file, budget, priority } = this.options;
    this.chunks++;
    const first = this.firstRecord;
    // The first chunk creates the batch with its budget in one atomic step; later chunks wait
    // for it, so no row is ever visible to a worker before the budget that governs it, and add to
    // it only while it exists (a purge meanwhile must not leave them a batch without its budget).
    const meta: AddRowsMeta =
      first === undefined
        ? {
            file,
            priority,
            ...(this.options.priorityGiven === true ? { replacePriority: true } : {}),
            ...(budget === undefined ? {} : { budget }),
            ...(this.options.noReuse === true ? { noReuse: true } : {}),
            ...(this.options.appending === true ? { existing: true } : {}),
          }
        : { existing: true };
    const recorded = (async () => {
      if (first !== undefined) await first;
      return backend.ledger.addRows(batch, rows, meta);
    })();
    this.firstRecord ??= recorded;
    const outcomes = await recorded;
    // Only informs the report: a read that fails is caught there, never standing between a
    // recorded row and its job.
    const conflicts = await this.idConflictsOf(rows, outcomes);
    const toQueue: string[] = [];
    let held = 0;
    outcomes.forEach((outcome, i) => {
      const row = rows[i]!;
      if (outcome === "held") held++;
      if (outcome === "duplicate") this.sawKnown = true;
      const conflict = conflicts.get(i);
      if (outcome === "new" || outcome === "held") {
        this.enqueued++;
        this.credits += row.estimatedCredits;
      } else if (conflict !== undefined) {
        this.idConflicts++;
        this.options.onIdConflict?.(row, conflict);
      } else {
        this.duplicates++;
        if (!row.idGiven) this.duplicatesWithoutId++;
      }
      // A held row still queued and due a job gets it again (healing), whichever row named it.
      if (outcome === "new" || outcome === "duplicate-queued") toQueue.push(row.id);
    });
    // Only the ids are needed from here: let the rows go while the jobs are added (memory).
    rows.length = 0;
    if (toQueue.length > 0) await backend.addSubmitJobs(batch, toQueue, priority);
    if (held > 0) await this.afterHeld(held);
  }

  /**
   * The rows of a chunk the ledger found already held whose id was given (a derived id names its
   * prompt and parameters, so it cannot conflict) and whose held row is another request: another
   * prompt or other parameters. Read only for those rows (a re-enqueue of a file with ids reads
   * its rows back once); by index in `rows`, with the held row's line.
   */
  private async idConflictsOf(
    rows: readonly QueuedRow[],
    outcomes: readonly AddRowOutcome[],
  ): Promise<Map<number, { line: number }>> {
    const conflicts = new Map<number, { line: number }>();
    const given = outcomes.flatMap((outcome, i) =>
      (outcome === "duplicate" || outcome === "duplicate-queued") && rows[i]!.idGiven ? [i] : [],
    );
    if (given.length === 0) return conflicts;
    const { backend, batch } = this.options;
    let lines: (number | undefined)[];
    try {
      lines = await heldConflicts(
        backend.ledger,
        batch,
        given.map((i) => rows[i]!),
      );
    } catch (error) {
      // Not read (a Redis blip, a page that does not decode): these rows count as duplicates, as
      // before the check, and the run goes on; said once.
      this.options.onIdCheckFailed?.(error);
      return conflicts;
    }
    given.forEach((i, n) => {
      const line = lines[n];
      if (line !== undefined) conflicts.set(i, { line });
    });
    return conflicts;
  }

  /**
   * Held rows (a window-managed batch) get their jobs a window at a time: the first window as
   * soon as its rows are recorded. Once a feed left rows held, the window is full and workers
   * feed it as its rows move, so later chunks skip the feed (an HMGET each, with the feed's
   * logic: ~2,000 of them for a million rows), but for one every FEED_RECHECK_CHUNKS, and one
   * at the end (`finish`).
   */
  private afterHeld(held: number): Promise<void> {
    this.heldRecorded += held;
    this.feeds = this.feeds.then(async () => {
      if (this.windowFull && ++this.skippedFeeds < FEED_RECHECK_CHUNKS) return;
      await this.feed();
    });
    return this.feeds;
  }

  private async feed(): Promise<void> {
    const waiting = this.heldRecorded - this.heldFed;
    const fed = await this.options.backend.feedSubmitWindow(this.options.batch);
    this.heldFed += fed;
    // Fewer fed than this writer left held: the feed stopped for want of room. (Workers may
    // have fed some of them meanwhile: then this only delays the next feed, never loses one.)
    this.windowFull = fed < waiting;
    this.skippedFeeds = 0;
  }
}

/** What makes a row long: its prompt and metadata (parameters are short by their rules). */
function longValuesChars(row: QueuedRow): number {
  let chars = row.prompt.length;
  for (const [name, value] of Object.entries(row.metadata)) chars += name.length + value.length;
  return chars;
}
