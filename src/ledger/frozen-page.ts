/**
 * Frozen pages (frozen.ts): a batch's settled archived rows, compressed a page of seqs at a time.
 * Only the page arithmetic lives here, so that housekeeping and purge share it with the freezer.
 */

/** Rows (seqs) per frozen page. */
export const FROZEN_PAGE_ROWS = 64;

/** The frozen page that holds the row with this seq. */
export function frozenPageOf(seq: number): number {
  return Math.floor(seq / FROZEN_PAGE_ROWS);
}

/** The distinct frozen pages of these seqs, ascending. */
export function frozenPagesOf(seqs: Iterable<number>): number[] {
  const pages = new Set<number>();
  for (const seq of seqs) pages.add(frozenPageOf(seq));
  return [...pages].sort((a, b) => a - b);
}
