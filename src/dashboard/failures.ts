import type { Clock } from "../core/clock.js";
import type { Ledger } from "../ledger/index.js";

/** A failed row as the overview lists it. */
export interface FailedRowView {
  rowId: string;
  /** Manifest line the row starts at. */
  line: number;
  prompt: string;
  /** The error the pipeline recorded ("" when none was). */
  error: string;
}

export interface FailureReaderOptions {
  ledger: Pick<Ledger, "rows">;
  /** Failed rows listed per batch. @defaultValue 10 */
  limit?: number;
  /**
   * A batch's list is read again after this long even when its failed count has not changed
   * (a retry can swap one failed row for another). @defaultValue 60_000
   */
  maxAgeMs?: number;
  clock?: Pick<Clock, "now">;
}

/** The first failed rows of a batch, in manifest order; `prune` forgets batches no longer shown. */
export interface FailureReader {
  read(batch: string, failedCount: number): Promise<FailedRowView[]>;
  prune(keep: Iterable<string>): void;
}

interface Entry {
  failed: number;
  at: number;
  rows: Promise<FailedRowView[]>;
}

/**
 * The ledger indexes no failed rows: finding them walks the batch's rows (a million of them in a
 * large batch), so a page refreshing every few seconds must not do it on every request. A list is
 * kept while the batch's failed count stays the same (for `maxAgeMs` at most), and concurrent
 * requests share one walk, which stops at `limit` rows found.
 */
export function createFailureReader(options: FailureReaderOptions): FailureReader {
  const limit = options.limit ?? 10;
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = () => (options.clock ?? Date).now();
  const cache = new Map<string, Entry>();

  async function walk(batch: string): Promise<FailedRowView[]> {
    const found: FailedRowView[] = [];
    if (limit <= 0) return found;
    for await (const row of options.ledger.rows(batch, { statuses: ["failed"] })) {
      found.push({ rowId: row.id, line: row.line, prompt: row.prompt, error: row.error ?? "" });
      if (found.length >= limit) break;
    }
    return found;
  }

  return {
    read(batch, failedCount) {
      if (failedCount <= 0) {
        cache.delete(batch);
        return Promise.resolve([]);
      }
      const cached = cache.get(batch);
      if (cached && cached.failed === failedCount && now() - cached.at < maxAgeMs) return cached.rows;
      const rows = walk(batch);
      const entry: Entry = { failed: failedCount, at: now(), rows };
      cache.set(batch, entry);
      // A failed walk (Redis away) is not remembered: the next request tries again.
      rows.catch(() => {
        if (cache.get(batch) === entry) cache.delete(batch);
      });
      return rows;
    },
    prune(keep) {
      const wanted = new Set(keep);
      for (const batch of cache.keys()) if (!wanted.has(batch)) cache.delete(batch);
    },
  };
}
