import type { Ledger } from "../ledger/index.js";

/** Failed rows that share one error message. */
interface FailureGroup {
  error: string;
  count: number;
  /** The first few rows of the group, for links. */
  rowIds: string[];
}

export interface FailureGroups {
  groups: FailureGroup[];
  /** Failed rows read (at most the limit). */
  read: number;
  /** False when the batch has more failed rows than were read. */
  complete: boolean;
}

/** Failed rows read for the groups at most: the failed index's first pages, whatever the batch holds. */
const GROUP_READ_LIMIT = 2_000;
const IDS_PER_GROUP = 5;

type GroupsLedger = Pick<Ledger, "statePages" | "ensureStateIndex">;

/**
 * The indexing of a batch made before the state indexes, in flight in this process, per ledger:
 * page views of such a batch at once share one pass over its rows instead of each making one.
 * Once done, the batch's flag makes every later call one HGET.
 */
const indexing = new WeakMap<GroupsLedger, Map<string, Promise<void>>>();

function indexOnce(ledger: GroupsLedger, batch: string): Promise<void> {
  const running = indexing.get(ledger) ?? new Map<string, Promise<void>>();
  indexing.set(ledger, running);
  const inFlight = running.get(batch);
  if (inFlight) return inFlight;
  const started = ledger.ensureStateIndex(batch).finally(() => running.delete(batch));
  running.set(batch, started);
  return started;
}

/** The batch's failed rows grouped by error message, largest group first (from the failed index). */
export async function readFailureGroups(
  ledger: GroupsLedger,
  batch: string,
  limit = GROUP_READ_LIMIT,
): Promise<FailureGroups> {
  await indexOnce(ledger, batch);
  const groups = new Map<string, FailureGroup>();
  let read = 0;
  let complete = true;
  outer: for await (const page of ledger.statePages(batch, "failed", { pageSize: Math.min(500, limit) })) {
    for (const { row } of page) {
      if (read >= limit) {
        complete = false;
        break outer;
      }
      read++;
      const error = row.error ?? "";
      const group = groups.get(error) ?? { error, count: 0, rowIds: [] };
      group.count++;
      if (group.rowIds.length < IDS_PER_GROUP) group.rowIds.push(row.id);
      groups.set(error, group);
    }
  }
  return { groups: [...groups.values()].sort((a, b) => b.count - a.count), read, complete };
}
