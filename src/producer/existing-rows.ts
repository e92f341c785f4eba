import { requestHash } from "../ledger/index.js";
import type { ManifestRow } from "../manifest/index.js";
import type { InFileOutcome } from "./in-file-ids.js";
import { ENQUEUE_CHUNK, MAX_CHUNKS_IN_FLIGHT } from "./limits.js";
import { heldConflicts } from "./same-request.js";
import type { ProducerBackend, ProducerLedger } from "./types.js";
import { InFlightWindow } from "./window.js";

/** What the counter reads: whether rows exist, the result index, and the held rows of given ids. */
export type CounterBackend = Pick<ProducerBackend, "rowsExist" | "resultsExist"> & {
  ledger?: Pick<ProducerLedger, "getRows">;
};

export interface CounterEvents {
  /** A row whose given id the batch holds for another request (line: the held row's). */
  onIdConflict?(row: ManifestRow, held: { line: number }): void;
  /** A row the batch does not hold whose id an earlier row of the file took, asking the same. */
  onRepeat?(row: ManifestRow): void;
  /** A row the batch does not hold whose given id an earlier row of the file took for another request. */
  onInFileConflict?(row: ManifestRow, line: number): void;
  /** The held rows of given ids could not be read back: those count as held, unchecked. */
  onIdCheckFailed?(error: unknown): void;
}

/** What a buffered row keeps of its metadata: none (the checks read the id, request and credits). */
const NO_METADATA: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * For a dry run: counts the valid rows the batch already holds, one pipelined read per chunk
 * (asking the ledger row by row would take minutes for a million rows), and the credits of those
 * it does not. A row whose given id the batch holds for another prompt or other parameters is
 * told apart as the enqueue does (chunk-writer.ts): read back only for those rows. Writes nothing.
 */
export class ExistingRowCounter {
  existing = 0;
  /** Rows whose given id the batch holds for another request: errors, as the enqueue reports them. */
  idConflicts = 0;
  /**
   * Of the rows the batch does not hold, those whose request the result index holds (left out of
   * `newCredits`: a worker copies their image). Counted only when `resultsExist` is given.
   */
  reusable = 0;
  /** Upper-bound credits of the rows the batch does not hold yet (and that would not be reused). */
  newCredits = 0;
  private buffer: { row: ManifestRow; inFile: InFileOutcome }[] = [];
  private readonly window = new InFlightWindow(MAX_CHUNKS_IN_FLIGHT);

  constructor(
    private readonly backend: CounterBackend,
    private readonly batch: string,
    private readonly chunkSize = ENQUEUE_CHUNK,
    private readonly events: CounterEvents = {},
  ) {}

  /**
   * `inFile`: what the row's id met earlier in the file (in-file-ids.ts). It stands only for an
   * id the batch does not hold: a row under an id the batch holds is compared with the batch's row,
   * as the enqueue compares it, whatever rows of the file came before.
   */
  add(row: ManifestRow, inFile: InFileOutcome = "first"): Promise<void> | undefined {
    // Kept without its metadata, which no check reads: a chunk of rows with long metadata values
    // (a 300 KB caption each) held whole, two chunks in flight, was ~300 MB of a dry run's peak.
    this.buffer.push({ row: row.metadata === NO_METADATA ? row : { ...row, metadata: NO_METADATA }, inFile });
    return this.buffer.length >= this.chunkSize ? this.flush() : undefined;
  }

  async finish(): Promise<void> {
    await this.flush();
    await this.window.drain();
  }

  private flush(): Promise<void> {
    if (this.buffer.length === 0) return Promise.resolve();
    const rows = this.buffer;
    this.buffer = [];
    return this.window.push(this.check(rows));
  }

  private async check(entries: { row: ManifestRow; inFile: InFileOutcome }[]): Promise<void> {
    const exists = await this.backend.rowsExist(
      this.batch,
      entries.map(({ row }) => row.id),
    );
    const held = entries.filter((_, i) => exists[i]).map(({ row }) => row);
    const conflicts = await this.conflictsOf(held.filter((row) => row.idGiven));
    this.existing += held.length - conflicts;
    const fresh: ManifestRow[] = [];
    entries.forEach(({ row, inFile }, i) => {
      if (exists[i]) return;
      if (inFile === "first") fresh.push(row);
      else if (inFile === "repeat") this.events.onRepeat?.(row);
      else this.events.onInFileConflict?.(row, inFile.conflictLine);
    });
    const reused = await this.reusedOf(fresh);
    fresh.forEach((row, i) => {
      if (reused[i]) this.reusable++;
      else this.newCredits += row.estimatedCredits;
    });
  }

  /** Of `held` (rows with a given id the batch holds), those asking another request: told, counted. */
  private async conflictsOf(held: readonly ManifestRow[]): Promise<number> {
    const ledger = this.backend.ledger;
    if (held.length === 0 || ledger === undefined) return 0;
    let lines: (number | undefined)[];
    try {
      lines = await heldConflicts(
        ledger,
        this.batch,
        held.map((row) => {
          const { prompt, ...params } = row.params;
          return { id: row.id, prompt, params };
        }),
      );
    } catch (error) {
      this.events.onIdCheckFailed?.(error);
      return 0;
    }
    let count = 0;
    held.forEach((row, i) => {
      const line = lines[i];
      if (line === undefined) return;
      count++;
      this.events.onIdConflict?.(row, { line });
    });
    this.idConflicts += count;
    return count;
  }

  /** Per row: whether a worker would archive it from the result index (seeded and indexed). */
  private async reusedOf(rows: readonly ManifestRow[]): Promise<boolean[]> {
    const lookup = this.backend.resultsExist;
    if (lookup === undefined) return rows.map(() => false);
    const hashes = rows.map(({ params: { prompt, ...params } }) => requestHash(prompt, params));
    const asked = hashes.filter((hash): hash is string => hash !== undefined);
    const found = asked.length === 0 ? [] : await lookup.call(this.backend, asked);
    let next = 0;
    return hashes.map((hash) => (hash === undefined ? false : found[next++] === true));
  }
}
