import type { Clock } from "../core/clock.js";
import type { Ledger, RowRecord } from "../ledger/index.js";

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
  /** `ensureStateIndex`, when given, indexes a batch recorded before the state indexes (once). */
  ledger: Pick<Ledger, "statePages"> & Partial<Pick<Ledger, "ensureStateIndex">>;
  /** Failed rows listed per batch. @defaultValue 10 */
  limit?: number;
  /**
   * A batch's list is read again after this long even when its failed count has not changed
   * (a retry can swap one failed row for another). @defaultValue 60_000
   */
  maxAgeMs?: number;
  clock?: Pick<Clock, "now">;
}

/**
 * Failed rows of a batch: the `limit` that failed first, shown in manifest order among themselves
 * (exactly the batch's first failed rows in manifest order while it has at most `limit`); `prune`
 * forgets batches no longer shown.
 */
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
 * Failed rows come from the batch's failed index, ordered by when they failed, not by manifest
 * line: finding the batch's first failed rows in manifest order would read every failed row (a
 * hundred thousand in a bad batch). So one page of `limit` rows is read, the earliest failures,
 * and sorted by manifest order: `limit` reads, whatever the batch holds. A list is still kept
 * while the batch's failed count stays the same (for `maxAgeMs` at most), and concurrent
 * requests share one read.
 */
export function createFailureReader(options: FailureReaderOptions): FailureReader {
  const limit = options.limit ?? 10;
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = () => (options.clock ?? Date).now();
  const cache = new Map<string, Entry>();

  async function walk(batch: string): Promise<FailedRowView[]> {
    const found: FailedRowView[] = [];
    if (limit <= 0) return found;
    await options.ledger.ensureStateIndex?.(batch);
    const rows: RowRecord[] = [];
    for await (const page of options.ledger.statePages(batch, "failed", { pageSize: limit })) {
      for (const { row } of page) if (rows.length < limit) rows.push(row);
      if (rows.length >= limit) break;
    }
    rows.sort((a, b) => a.seq - b.seq);
    for (const row of rows) {
      found.push({ rowId: row.id, line: row.line, prompt: row.prompt, error: row.error ?? "" });
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
