import { requestHash } from "../ledger/index.js";
import type { ManifestRow } from "../manifest/index.js";
import { ENQUEUE_CHUNK, MAX_CHUNKS_IN_FLIGHT } from "./limits.js";
import type { ProducerBackend } from "./types.js";
import { InFlightWindow } from "./window.js";

/**
 * For a dry run: counts the valid rows the batch already holds, one pipelined read per chunk
 * (asking the ledger row by row would take minutes for a million rows), and the credits of those
 * it does not. Writes nothing.
 */
export class ExistingRowCounter {
  existing = 0;
  /**
   * Of the rows the batch does not hold, those whose request the result index holds (left out of
   * `newCredits`: a worker copies their image). Counted only when `resultsExist` is given.
   */
  reusable = 0;
  /** Upper-bound credits of the rows the batch does not hold yet (and that would not be reused). */
  newCredits = 0;
  private buffer: ManifestRow[] = [];
  private readonly window = new InFlightWindow(MAX_CHUNKS_IN_FLIGHT);

  constructor(
    private readonly backend: Pick<ProducerBackend, "rowsExist" | "resultsExist">,
    private readonly batch: string,
    private readonly chunkSize = ENQUEUE_CHUNK,
  ) {}

  add(row: ManifestRow): Promise<void> | undefined {
    this.buffer.push(row);
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

  private async check(rows: ManifestRow[]): Promise<void> {
    const exists = await this.backend.rowsExist(
      this.batch,
      rows.map((row) => row.id),
    );
    const fresh = rows.filter((_, i) => !exists[i]);
    this.existing += rows.length - fresh.length;
    const reused = await this.reusedOf(fresh);
    fresh.forEach((row, i) => {
      if (reused[i]) this.reusable++;
      else this.newCredits += row.estimatedCredits;
    });
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
