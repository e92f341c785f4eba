/** The producer's named limits and defaults, in one place. */

/**
 * Rows per ledger write and per `addBulk`: one Redis script call and one MULTI each. Objects
 * of a chunk in flight outlive V8's young generation, so chunk size x chunks in flight sets the
 * heap: at a million rows, 500 x 2 peaked near 200 MB RSS where 1,000 x 4 reached ~290 MB, with
 * no throughput difference that could be told apart on a shared two-core machine.
 */
export const ENQUEUE_CHUNK = 500;

/**
 * Characters of prompts and metadata a chunk holds at most, before ENQUEUE_CHUNK rows: rows of
 * long values (a 300 KB caption or thumbnail in a metadata column; the row limit is 1M characters)
 * would make one chunk's script call hundreds of MB (past Redis's 1 GB query buffer at the most)
 * and the process's peak RSS several times the usual. 500 rows of 300-character prompts are ~0.2M.
 */
export const ENQUEUE_CHUNK_CHARS = 4_000_000;

/**
 * Chunks written concurrently: Redis records one chunk while the next is read from the spool and
 * encoded. One left Redis idle between chunks; more raised peak RSS (see ENQUEUE_CHUNK).
 */
export const MAX_CHUNKS_IN_FLIGHT = 2;

/**
 * V8 flags `kie-batch enqueue` sets before reading the file (V8 reads both at every collection).
 * The passes keep ~25 MB live but old space filled with garbage: V8 pretenured the rows read
 * a block at a time (allocated them in old space, where they died), and the chunks in flight
 * outlive the young generation; with V8's default growth (up to 4x the live heap) old space
 * reached ~90 MB before a full collection. The bench's 100,000 rows through the bin: peak RSS
 * ~200 -> ~145 MB, and ~15% less CPU. Neither bounds the heap: more live data still fits.
 */
export const ENQUEUE_V8_FLAGS = [
  // Old space grows by 2x what is live between full collections (V8's own factor reaches 4x).
  "--heap-growing-percent=100",
  "--no-allocation-site-pretenuring",
] as const;

/**
 * Chunks a writer may skip feeding a window-managed batch it found full before it feeds once
 * more anyway: workers feed a window as its rows move, but a window they emptied between two
 * chunks would otherwise wait for the feed at the end of the enqueue. At 500 rows a chunk, one
 * feed (an HMGET) per 32,000 rows instead of one per chunk.
 */
export const FEED_RECHECK_CHUNKS = 64;

/** Row errors listed in the summary; the rest are counted. */
export const MAX_REPORTED_ERRORS = 20;

/** Distinct warnings kept (JSON rows may each bring new column names); the rest are counted. */
export const MAX_WARNINGS = 50;

/** The priority limits are read with the other flag values, in core/values. */
export { DEFAULT_PRIORITY } from "../core/values.js";

/** A dry run asks Redis only if it answers this quickly; otherwise it goes on without it. */
export const DRY_RUN_REDIS_TIMEOUT_MS = 1_500;

/** The progress line appears once a pass has run this long (small files never show it)... */
export const PROGRESS_AFTER_MS = 1_000;
/** ...and is redrawn at most this often. */
export const PROGRESS_EVERY_MS = 250;
