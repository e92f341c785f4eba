import { afterEach, describe, expect, it } from "vitest";
import { type Reconciler, reconcileNow, startReconciler } from "../../src/app/reconciler.js";
import type { Logger } from "../../src/core/logger.js";
import type { Ledger } from "../../src/ledger/index.js";
import type { StateEntry, StatePageOptions } from "../../src/ledger/read-options.js";
import type { BatchSummary, RowRecord } from "../../src/ledger/types.js";
import {
  type ReconcileDeps,
  type ReconcileReport,
  reconcileAll,
  reconcileBatch,
} from "../../src/worker/reconcile.js";

/** Pages of a batch far longer than any test waits for: a sweep that never stops reads them all. */
const LONG_BATCH_PAGES = 10_000;
const PAGE_ROWS = 2;
const HOUR = 3_600_000;

/** A batch whose only rows wait in `submitted`, `pages` pages of them. */
function summaryOf(batch: string, pages = 1): BatchSummary {
  return {
    batch,
    queued: 0,
    submitted: pages * PAGE_ROWS,
    generating: 0,
    archiving: 0,
    waitingBudget: 0,
  } as unknown as BatchSummary;
}

/** Rows without a task id: the reconciler reads and counts them, and asks the queues nothing. */
function pageOf(batch: string, n: number): StateEntry[] {
  return Array.from({ length: PAGE_ROWS }, (_, i) => ({
    row: { batch, id: `${batch}-${n}-${i}`, taskIds: [] } as unknown as RowRecord,
    enteredAt: 0,
  }));
}

interface FakeLedger {
  /** Pages handed out, over every batch. */
  served: number;
  /** `enteredBefore` of each stateOnlyPages call. */
  enteredBefore: (number | undefined)[];
  /** For each housekeep call: what its `keepGoing` answered. */
  housekept: { batch: string; keptGoing: boolean }[];
  /** The batches each freeze walk was asked for, in order. */
  frozen: string[];
  ledger: Ledger;
}

function fakeLedger(
  batches: BatchSummary[],
  options: { failing?: string; housekeepFailing?: string; onPage?: (served: number) => Promise<void> } = {},
): FakeLedger {
  const fake: FakeLedger = {
    served: 0,
    enteredBefore: [],
    housekept: [],
    frozen: [],
    ledger: undefined as never,
  };
  const ledger = {
    listBatches: async () => batches,
    repairIndex: async () => [],
    getBatch: async (batch: string) => {
      if (batch === options.failing) throw new Error(`batch ${batch}: hash unreadable`);
      return batches.find((b) => b.batch === batch);
    },
    ensureStateIndex: async () => undefined,
    async *stateOnlyPages(batch: string, _state: string, pageOptions: StatePageOptions = {}) {
      fake.enteredBefore.push(pageOptions.enteredBefore);
      const pages = (batches.find((b) => b.batch === batch)?.submitted ?? 0) / PAGE_ROWS;
      for (let n = 0; n < pages; n++) {
        fake.served += 1;
        await options.onPage?.(fake.served);
        yield pageOf(batch, n);
      }
    },
    stillInState: async () => [],
    countRepairs: async () => undefined,
    transition: async () => ({ ok: false }),
    wakeParked: async () => ({ woken: [] }),
    reservedEnded: async () => ({ ids: [], cursor: "0" }),
    claimLease: async () => true,
    releaseLease: async () => true,
    housekeep: async (batch: string, hk: { keepGoing?: () => Promise<boolean> } = {}) => {
      if (batch === options.housekeepFailing) throw new Error(`batch ${batch}: housekeeping refused`);
      const keptGoing = hk.keepGoing ? await hk.keepGoing() : true;
      fake.housekept.push({ batch, keptGoing });
      return { mode: "expire", done: 0, complete: keptGoing };
    },
    freeze: async (batch: string) => {
      fake.frozen.push(batch);
      return { frozen: 0, pages: 0, complete: true };
    },
  };
  fake.ledger = ledger as unknown as Ledger;
  return fake;
}

function fakeLog() {
  const warned: { fields: Record<string, unknown>; message: string }[] = [];
  let onWarn = () => {};
  const log = {
    info: () => undefined,
    warn: (fields: Record<string, unknown>, message: string) => {
      warned.push({ fields, message });
      onWarn();
    },
  } as unknown as Logger;
  return { log, warned, onWarned: (listener: () => void) => (onWarn = listener) };
}

function deps(fake: FakeLedger, log: Logger): ReconcileDeps {
  return {
    ledger: fake.ledger,
    jobs: undefined as never,
    clock: { now: () => HOUR },
    log,
    pageSize: PAGE_ROWS,
  };
}

let reconciler: Reconciler | undefined;
afterEach(async () => {
  await reconciler?.close();
  reconciler = undefined;
});

function start(fake: FakeLedger, log: Logger, onSweep: (reports: ReconcileReport[]) => void): Reconciler {
  reconciler = startReconciler({
    redis: {} as never,
    ledger: fake.ledger,
    queues: {} as never,
    clock: { now: () => HOUR },
    log,
    everyMs: HOUR,
    onSweep,
  });
  return reconciler;
}

describe("a reconciler sweep told to stop", () => {
  it("stops between two pages of a batch, and still reports what it read", async () => {
    const fake = fakeLedger([summaryOf("big", LONG_BATCH_PAGES)]);
    const report = await reconcileBatch(deps(fake, fakeLog().log), "big", async () => fake.served < 3);
    expect(fake.served).toBe(3);
    expect(report).toEqual({ batch: "big", checked: 3 * PAGE_ROWS, requeued: 0, failed: 0 });
  });

  it("in a closing worker: close returns after the page in hand, and housekeeping is told to stop too", async () => {
    let reached!: () => void;
    const atSecondPage = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const fake = fakeLedger([summaryOf("big", LONG_BATCH_PAGES)], {
      onPage: async (served) => {
        if (served !== 2) return;
        reached();
        await gate;
      },
    });
    const reports: ReconcileReport[][] = [];
    const running = start(fake, fakeLog().log, (r) => reports.push(r));
    await atSecondPage;

    const closed = running.close();
    release();
    await closed;

    // The sweep had 9,998 pages to go: it stopped after the one it held when close came.
    expect(fake.served).toBe(2);
    expect(reports).toEqual([[{ batch: "big", checked: 2 * PAGE_ROWS, requeued: 0, failed: 0 }]]);
    expect(fake.housekept).toEqual([{ batch: "big", keptGoing: false }]);
  });
});

describe("a batch whose sweep fails", () => {
  it("is logged by name, and the batches after it are still swept", async () => {
    const fake = fakeLedger(
      ["one", "two", "three"].map((b) => summaryOf(b)),
      { failing: "two" },
    );
    const { log, warned } = fakeLog();
    const reports = await reconcileAll(deps(fake, log));
    expect(reports.map((r) => r.batch)).toEqual(["one", "three"]);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.fields.batch).toBe("two");
    expect(warned[0]!.message).toMatch(/batch two failed/);
  });

  it("does not keep the worker's sweep from housekeeping every batch", async () => {
    const fake = fakeLedger(
      ["one", "two", "three"].map((b) => summaryOf(b)),
      { failing: "two" },
    );
    const { log, warned, onWarned } = fakeLog();
    // The sweep ends in onSweep, or (the failure escaping) in the periodic runner's warning.
    const ended = new Promise<ReconcileReport[] | undefined>((resolve) => {
      onWarned(() => {
        if (warned.at(-1)!.message === "reconciler sweep failed") resolve(undefined);
      });
      start(fake, log, resolve);
    });
    const reports = await ended;
    expect(reports?.map((r) => r.batch)).toEqual(["one", "three"]);
    expect(fake.housekept.map((h) => h.batch)).toEqual(["one", "two", "three"]);
    // Then every batch's settled archived rows are frozen, the failing one's too.
    expect(fake.frozen).toEqual(["one", "two", "three"]);
    expect(warned.map((w) => w.fields.batch)).toEqual(["two"]);
  });
});

describe("reconcileNow (kie-batch retry's sweep)", () => {
  it("leaves alone only rows younger than the settle time it is given", async () => {
    const fake = fakeLedger([summaryOf("b")]);
    const parts = { redis: {} as never, ledger: fake.ledger, queues: {} as never, log: fakeLog().log };
    await reconcileNow({ ...parts, clock: { now: () => HOUR }, settleMs: 5_000 }, "b");
    expect(fake.enteredBefore).toEqual([HOUR - 5_000]);
  });
});

describe("a batch whose housekeeping fails", () => {
  it("does not keep the other batches from their housekeeping, nor any batch from freezing", async () => {
    const fake = fakeLedger(
      ["one", "two", "three"].map((b) => summaryOf(b)),
      { housekeepFailing: "two" },
    );
    const { log, warned } = fakeLog();
    const reports = await new Promise<ReconcileReport[]>((resolve) => start(fake, log, resolve));
    expect(reports.map((r) => r.batch)).toEqual(["one", "two", "three"]);
    expect(fake.housekept.map((h) => h.batch)).toEqual(["one", "three"]);
    expect(fake.frozen).toEqual(["one", "two", "three"]);
    expect(warned.map((w) => w.fields.batch)).toEqual(["two"]);
    expect(warned[0]!.message).toMatch(/housekeeping: batch two failed/);
  });
});

describe("a reconciler closing", () => {
  const startOn = (fake: FakeLedger, log: Logger, status: string) =>
    new Promise<Reconciler>((resolve) => {
      const started = startReconciler({
        redis: { status } as never,
        ledger: fake.ledger,
        queues: {} as never,
        clock: { now: () => HOUR },
        log,
        everyMs: HOUR,
        onSweep: () => resolve(started),
      });
    });

  it("lets its lease go while connected, waiting at most 2 s for the answer", async () => {
    const fake = fakeLedger([]);
    const asked: string[] = [];
    fake.ledger.releaseLease = (name: string) => {
      asked.push(name);
      return new Promise<boolean>(() => {}); // a Redis that never answers
    };
    const { log, warned } = fakeLog();
    const started = await startOn(fake, log, "ready");
    const begun = Date.now();
    await started.close();
    expect(Date.now() - begun).toBeLessThan(3_000);
    expect(asked).toEqual(["reconcile"]);
    expect(warned.map((w) => w.message)).toEqual([
      "reconciler: the lease release got no answer; it lapses by itself",
    ]);
  });

  it("does not ask a Redis it is not connected to (the command would wait for a reconnect)", async () => {
    const fake = fakeLedger([]);
    const asked: string[] = [];
    fake.ledger.releaseLease = async (name: string) => {
      asked.push(name);
      return true;
    };
    const started = await startOn(fake, fakeLog().log, "reconnecting");
    await started.close();
    expect(asked).toEqual([]);
  });
});
