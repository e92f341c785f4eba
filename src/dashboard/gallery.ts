/**
 * The batch page's grid: rows of one batch, filtered by state and a search, paged by a seq cursor
 * over the batch's order zset. A request reads at most SCAN_BUDGET rows, however large the batch:
 * the search covers the window it reads, and "next" continues where it stopped. The failed, queued
 * and in-progress filters read their rows through the state indexes (ledger `stateWindow`), so
 * only those rows are read, whatever else the batch holds.
 */
import {
  INDEXED_STATUSES,
  type IndexedStatus,
  type Ledger,
  type RowRecord,
  type Status,
} from "../ledger/index.js";

/** The state filters the page offers; `in-progress` is submitted, generating and archiving. */
export const FILTERS = ["all", "archived", "failed", "in-progress", "queued", "cancelled"] as const;
export type Filter = (typeof FILTERS)[number];

const FILTER_STATES: Record<Filter, readonly Status[] | undefined> = {
  all: undefined,
  archived: ["archived"],
  failed: ["failed"],
  "in-progress": ["submitted", "generating", "archiving"],
  queued: ["queued"],
  cancelled: ["cancelled"],
};

type Order = "manifest" | "latest";

/** Rows one page shows. */
export const PAGE_TILES = 24;
/** Rows read per round trip. */
const WINDOW = 200;
/** Rows one request reads at most (its search window). */
export const SCAN_BUDGET = 2_000;
/** Rows a row page reads at most to find each of its neighbours (two such reads per view). */
const NEIGHBOUR_BUDGET = 400;

export interface GalleryQuery {
  filter: Filter;
  /** Case-insensitive; matched against the prompt, the row id and the metadata values. */
  search: string;
  order: Order;
  /** Continue after this seq (the cursor of the previous page). */
  after?: number;
}

export interface GalleryPage {
  rows: RowRecord[];
  /** The cursor of the next page; undefined at the end of the batch. */
  next?: number;
  /** Rows read to make this page. */
  scanned: number;
}

/** The page's query from its URL's parameters; unknown values fall back to the defaults. */
export function parseGalleryQuery(query: Record<string, unknown>): GalleryQuery {
  const text = (name: string) => (typeof query[name] === "string" ? (query[name] as string) : "");
  const filter = (FILTERS as readonly string[]).includes(text("state")) ? (text("state") as Filter) : "all";
  const after = Number(text("after"));
  return {
    filter,
    search: text("q").trim().slice(0, 200),
    order: text("order") === "latest" ? "latest" : "manifest",
    ...(text("after") !== "" && Number.isSafeInteger(after) ? { after } : {}),
  };
}

/** The URL query for a page (only the parameters that differ from the defaults). */
export function galleryHref(batch: string, query: Partial<GalleryQuery>): string {
  const params = new URLSearchParams();
  if (query.filter && query.filter !== "all") params.set("state", query.filter);
  if (query.search) params.set("q", query.search);
  if (query.order === "latest") params.set("order", "latest");
  if (query.after !== undefined) params.set("after", String(query.after));
  const qs = params.toString();
  return `/batches/${encodeURIComponent(batch)}${qs ? `?${qs}` : ""}`;
}

/** Whether a row passes the page's filter and search. */
export function rowMatches(row: RowRecord, query: Pick<GalleryQuery, "filter" | "search">): boolean {
  const states = FILTER_STATES[query.filter];
  if (states && !states.includes(row.status)) return false;
  if (query.search === "") return true;
  const needle = query.search.toLowerCase();
  return (
    row.prompt.toLowerCase().includes(needle) ||
    row.id.toLowerCase().includes(needle) ||
    Object.values(row.metadata).some((value) => value.toLowerCase().includes(needle))
  );
}

type Reader = Pick<Ledger, "rowWindow" | "stateWindow">;

/** The states a filter shows, when every one of them has an index (failed, queued, in progress). */
function indexedStates(filter: Filter): readonly IndexedStatus[] | undefined {
  const states = FILTER_STATES[filter];
  if (!states) return undefined;
  return states.every((s) => (INDEXED_STATUSES as readonly Status[]).includes(s))
    ? (states as readonly IndexedStatus[])
    : undefined;
}

/**
 * Up to `want` matching rows from the cursor on, reading windows until the page is full, the
 * batch ends or `budget` rows were read. The cursor returned is the seq of the last row read, so
 * rows past it are never skipped, whatever matched.
 */
export async function readMatches(
  ledger: Reader,
  batch: string,
  query: GalleryQuery,
  want: number,
  budget = SCAN_BUDGET,
): Promise<GalleryPage> {
  const rows: RowRecord[] = [];
  let after = query.after;
  let scanned = 0;
  // Failed, queued or in-progress rows come from their state indexes when those can serve them:
  // ten failed rows of a million show on the first page, not after the manifest's first 2,000.
  let states = indexedStates(query.filter);
  for (;;) {
    const limit = Math.min(WINDOW, budget - scanned);
    const options = { limit, reverse: query.order === "latest", ...(after === undefined ? {} : { after }) };
    let window = states ? await ledger.stateWindow(batch, states, options) : undefined;
    if (!window) {
      states = undefined;
      window = await ledger.rowWindow(batch, options);
    }
    for (const row of window.rows) {
      scanned++;
      if (rows.length < want && rowMatches(row, query)) rows.push(row);
      after = row.seq;
      if (rows.length >= want) return { rows, next: row.seq, scanned };
    }
    if (window.next === undefined) return { rows, scanned };
    after = window.next;
    if (scanned >= budget) return { rows, next: after, scanned };
  }
}

/** The rows before and after `row` among those matching `query` (null at either end, or past the search budget). */
export async function neighbours(
  ledger: Reader,
  row: RowRecord,
  query: GalleryQuery,
): Promise<{ previous: RowRecord | null; next: RowRecord | null }> {
  const latest = query.order === "latest";
  const [forward, backward] = await Promise.all([
    readMatches(ledger, row.batch, { ...query, after: row.seq }, 1, NEIGHBOUR_BUDGET),
    readMatches(
      ledger,
      row.batch,
      { ...query, order: latest ? "manifest" : "latest", after: row.seq },
      1,
      NEIGHBOUR_BUDGET,
    ),
  ]);
  return { previous: backward.rows[0] ?? null, next: forward.rows[0] ?? null };
}
