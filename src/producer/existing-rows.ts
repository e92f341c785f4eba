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
  /** Upper-bound credits of the rows the batch does not hold yet. */
  newCredits = 0;
  private buffer: ManifestRow[] = [];
  private readonly window = new InFlightWindow(MAX_CHUNKS_IN_FLIGHT);

  constructor(
    private readonly backend: Pick<ProducerBackend, "rowsExist">,
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
    rows.forEach((row, i) => {
      if (exists[i]) this.existing++;
      else this.newCredits += row.estimatedCredits;
    });
  }
}
