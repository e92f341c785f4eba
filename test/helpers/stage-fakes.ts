/**
 * Small fakes for the stage unit tests: a row record, a job, a clock that only moves when told
 * (or when a stage sleeps on it), and one ledger row in memory. Each stage's test adds the few
 * other ports it uses as object literals.
 */
import { silentLogger } from "../../src/core/logger.js";
import type { RowRecord, RowState, TransitionInput, TransitionResult } from "../../src/ledger/types.js";
import type { StageJob } from "../../src/worker/stage.js";

export const T0 = 1_700_000_000_000;

export function rowRecord(overrides: Partial<RowRecord> = {}): RowRecord {
  return {
    batch: "b",
    id: "r1",
    line: 2,
    seq: 1,
    prompt: "a fox in the snow",
    params: { acceleration_level: "none" },
    metadata: {},
    estimatedCredits: 8,
    status: "queued",
    taskIds: [],
    resubmits: 0,
    uncertain: 0,
    images: [],
    creditsReserved: 0,
    creditsSpent: 0,
    creditsUncertain: 0,
    createdAt: T0,
    updatedAt: T0,
    waitingBudget: false,
    ...overrides,
  };
}

export function stageJob<T>(data: T, overrides: Partial<StageJob<T>> = {}): StageJob<T> {
  return {
    key: "b/r1",
    data,
    signal: new AbortController().signal,
    attemptsMade: 0,
    attempts: 8,
    log: silentLogger(),
    ...overrides,
  };
}

/** A clock at `T0` that moves by hand; a sleep moves it at once and is recorded. */
export function fakeClock(start = T0) {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
    async sleep(ms: number, signal?: AbortSignal) {
      signal?.throwIfAborted();
      sleeps.push(ms);
      now += ms;
    },
  };
}

/**
 * One ledger row in memory, moved as the ledger's transition moves it: nothing unless its status
 * is in `from`, then `to`, `set` (null removes), `incr` and `addTaskId`. Every input is recorded.
 * A `settle` is answered as the ledger does, once per task ("settled", then "already-settled"),
 * whether the move is made or refused, and recorded in `settles` (no money is kept here).
 */
/** A row as `getRowState` answers it: the body's fields left out, at run time too. */
export function stateOf(row: RowRecord): RowState {
  const {
    prompt: _prompt,
    params: _params,
    metadata: _metadata,
    images: _images,
    location: _location,
    bytes: _bytes,
    sha256: _sha256,
    error: _error,
    reusedFrom: _reusedFrom,
    ...state
  } = structuredClone(row);
  return state;
}

export function oneRowLedger(initial: RowRecord | undefined) {
  let row = initial === undefined ? undefined : structuredClone(initial);
  const transitions: TransitionInput[] = [];
  const settles: { spent: number; taskId?: string }[] = [];
  const settledTasks = new Set<string>();
  return {
    transitions,
    settles,
    /** The row as it is now. */
    current: () => row,
    getRow: async (_batch: string, _rowId: string) => (row === undefined ? undefined : structuredClone(row)),
    /** The row without its body's fields, as the ledger's `getRowState` reads it (its hash alone). */
    getRowState: async (_batch: string, _rowId: string) => (row === undefined ? undefined : stateOf(row)),
    transition: async (_batch: string, _rowId: string, input: TransitionInput): Promise<TransitionResult> => {
      transitions.push(input);
      let settled: Pick<TransitionResult, "settled" | "parked"> = {};
      if (input.settle && row !== undefined) {
        const task = input.settle.taskId ?? row.taskId ?? "";
        settled = { settled: settledTasks.has(task) ? "already-settled" : "settled", parked: false };
        settledTasks.add(task);
        settles.push(input.settle);
      }
      if (
        row === undefined ||
        (input.from && !input.from.includes(row.status)) ||
        (input.ifTask !== undefined && row.taskId !== input.ifTask)
      ) {
        return { ok: false, row, finished: false, ...settled };
      }
      const next: RowRecord = { ...row, ...(input.to ? { status: input.to } : {}) };
      for (const [field, value] of Object.entries(input.set ?? {})) {
        if (value === null) delete (next as unknown as Record<string, unknown>)[field];
        else (next as unknown as Record<string, unknown>)[field] = value;
      }
      const counters = next as unknown as Record<string, number>;
      for (const [field, by] of Object.entries(input.incr ?? {}))
        counters[field] = (counters[field] ?? 0) + by;
      if (input.addTaskId !== undefined) {
        if (!next.taskIds.includes(input.addTaskId)) next.taskIds = [...next.taskIds, input.addTaskId];
        next.taskId = input.addTaskId;
      }
      row = next;
      return { ok: true, row: structuredClone(row), finished: false, ...settled };
    },
  };
}
