/**
 * A poll that finds its task done archives the row in its own job (issue 10) when the process has
 * a free archive slot and archiving is not paused; every other outcome hands the row to the
 * archive stage exactly as before (its job added), and a shutdown is thrown on, never swallowed.
 * The poll stage runs with the real inline archiver (archive-inline.ts, the archive stage's own
 * `archiveRow`) over one in-memory row, a fake store and a fake image copy.
 */
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ArchiveFromUrlOptions } from "../../src/archive/index.js";
import { ArchiveStoreError } from "../../src/archive/index.js";
import { retryDelay } from "../../src/core/backoff.js";
import type { ArchivePauseState } from "../../src/fleet/archive-pause.js";
import type { TaskRecord } from "../../src/kie/types.js";
import type { ArchiveDeps } from "../../src/worker/archive.js";
import { archiveStage } from "../../src/worker/archive.js";
import { archiveInline, archiveSlots } from "../../src/worker/archive-inline.js";
import type { ArchiveJob, PollJob } from "../../src/worker/jobs.js";
import { type PollDeps, pollStage } from "../../src/worker/poll.js";
import type { ArchiveInline, InlineArchiveOutcome } from "../../src/worker/ports.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob, T0 } from "../helpers/stage-fakes.js";

const DAY_MS = 86_400_000;
const URL0 = "https://files.example/t-1/0.png";

beforeEach(() => {
  vi.spyOn(Math, "random").mockReturnValue(0.5);
});
afterEach(() => {
  vi.restoreAllMocks();
});

function pollJob(overrides: Partial<PollJob> = {}): PollJob {
  return { batch: "b", rowId: "r1", taskId: "t-1", resubmit: 0, submittedAt: T0, checks: 3, ...overrides };
}

/** The archive job the poll hands off for task t-1 (its first try). */
function handedOff(overrides: Partial<ArchiveJob> = {}): ArchiveJob {
  return {
    batch: "b",
    rowId: "r1",
    taskId: "t-1",
    imageUrls: [URL0],
    completedAt: T0 + 5_000,
    creditsConsumed: 6,
    tries: 0,
    ...overrides,
  };
}

/**
 * A row generating task t-1, which KIE says is done; the poll stage's and the archive stage's
 * fakes over that one row; `capacity` archive slots; and what they saw.
 */
function setup(options: { capacity?: number; copy?: (copy: ArchiveFromUrlOptions) => Promise<void> } = {}) {
  const ledger = oneRowLedger(
    rowRecord({ status: "generating", taskId: "t-1", taskIds: ["t-1"], submittedAt: T0, creditsReserved: 8 }),
  );
  const clock = fakeClock(T0 + 10_000);
  const reads: string[] = [];
  const getRow = async (batch: string, rowId: string) => {
    reads.push(`${batch}/${rowId}`);
    return ledger.getRow(batch, rowId);
  };
  const getRowState = async (batch: string, rowId: string) => {
    reads.push(`${batch}/${rowId}`);
    return ledger.getRowState(batch, rowId);
  };
  const archives: { data: ArchiveJob; options?: { delayMs?: number } }[] = [];
  const settled: number[] = [];
  const copies: string[] = [];
  const puts: string[] = [];
  const heads: string[] = [];
  const pause = { state: null as ArchivePauseState | null, started: 0 };
  const archive: ArchiveDeps = {
    kie: { refreshDownloadUrl: async (url) => url },
    ledger: { getRow, transition: ledger.transition },
    store: {
      locationOf: (key) => `/archive/${key}`,
      head: async (key) => {
        heads.push(key);
        return undefined;
      },
      remove: async () => {},
      put: async (key, body: Readable) => {
        for await (const _ of body);
        puts.push(key);
      },
    },
    storePause: {
      get: async () => pause.state,
      pause: async (kind, reason) => {
        pause.started++;
        pause.state = { kind, reason, since: clock.now(), nextProbeAt: clock.now() + 60_000 };
        return true;
      },
      resume: async () => {
        pause.state = null;
      },
      claimProbe: async () => false,
    },
    clock,
    settings: { downloadHosts: [], fileLifetimeMs: 14 * DAY_MS, storeProbeMs: 60_000 },
    copyImage: async (copy) => {
      copies.push(copy.url);
      await options.copy?.(copy);
      const key = `${copy.key}.png`;
      return {
        key,
        location: `/archive/${key}`,
        bytes: 100,
        sha256: "ab".repeat(32),
        contentType: "image/png",
      };
    },
  };
  const slots = archiveSlots(options.capacity ?? 1);
  const inline: ArchiveInline = (data, job, row) => archiveInline(archive, slots, data, job, row);
  const task: TaskRecord = {
    taskId: "t-1",
    status: "success",
    imageUrls: [URL0],
    completedAt: T0 + 5_000,
    creditsConsumed: 6,
  };
  const deps: PollDeps = {
    kie: { getTask: async () => task },
    ledger: {
      getRowState,
      getBatch: async () => undefined,
      // A success's settle goes with its move to archiving (one call): seen here as a settle.
      transition: async (batch, rowId, input) => {
        const result = await ledger.transition(batch, rowId, input);
        if (input.settle && result.settled) settled.push(input.settle.spent);
        return result;
      },
      settleCredits: async (_batch, _rowId, spent) => {
        settled.push(spent);
        return "settled";
      },
      keepUncertain: async (_batch, _rowId, credits) => credits,
    },
    fleet: {
      pollSlot: async () => {},
      pause: async () => true,
      touchInFlight: async () => {},
      releaseInFlight: async () => {},
    },
    queues: {
      addSubmit: async () => {},
      addArchive: async (data, addOptions) => {
        archives.push(addOptions === undefined ? { data } : { data, options: addOptions });
      },
    },
    archiveInline: inline,
    clock,
    settings: {
      pollFirstMs: 5_000,
      recordLagGraceMs: 60_000,
      maxWaitMs: 30 * 60_000,
      maxResubmits: 1,
      fileLifetimeMs: 14 * 24 * 3_600_000,
    },
  };
  return { deps, archive, ledger, slots, pause, reads, archives, settled, copies, puts, heads };
}

/** The fakes, with a copy that aborts the job's signal (a shutdown) while it archives. */
function abortedMidArchive(reason?: Error) {
  const controller = new AbortController();
  const f = setup({
    copy: async () => {
      controller.abort(reason);
      throw new DOMException("aborted", "AbortError");
    },
  });
  return { f, signal: controller.signal };
}

describe("poll stage: a finished task archived in the poll job", () => {
  it("archives the row in the poll job: no archive job, the row read once, the slot given back", async () => {
    const f = setup();
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()?.status).toBe("archived");
    expect(f.copies).toEqual([URL0]);
    expect(f.puts).toEqual(["b/r1.json"]);
    expect(f.archives).toEqual([]);
    // Settled before the move to archiving, as before (invariant 2); the moved row is archived.
    expect(f.settled).toEqual([6]);
    expect(f.ledger.transitions.map((t) => t.to)).toEqual(["archiving", "archived"]);
    expect(f.reads).toEqual(["b/r1"]);
    // The row just moved to archiving: no sidecar of this task can be there yet, the store is not asked.
    expect(f.heads).toEqual([]);
    const release = f.slots.tryTake();
    expect(release).toBeDefined();
  });

  it("a retryable archive failure hands the row off with its next try and that try's delay", async () => {
    const f = setup({
      copy: async () => {
        throw new ArchiveStoreError({ code: "unavailable", message: "503" });
      },
    });
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    const wait = retryDelay(0, { baseMs: 2_000, maxMs: 5 * 60_000 });
    expect(f.archives).toEqual([{ data: handedOff({ tries: 1 }), options: { delayMs: wait } }]);
    expect(f.ledger.current()?.status).toBe("archiving");
  });

  it("no free archive slot: the archive job is added as before, nothing copied", async () => {
    const f = setup({ capacity: 1 });
    // The archive stage's own job holds the only slot.
    const release = f.slots.take();
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.archives).toEqual([{ data: handedOff() }]);
    expect(f.copies).toEqual([]);
    expect(f.ledger.current()?.status).toBe("archiving");
    release();
  });

  it("archiving paused: the archive job is added (it waits at the gate), nothing copied", async () => {
    const f = setup();
    f.pause.state = { kind: "store-unavailable", reason: "EACCES", since: T0 };
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.archives).toEqual([{ data: handedOff() }]);
    expect(f.copies).toEqual([]);
  });

  it("without an inline archiver (no archive stage here) the archive job is added as before", async () => {
    const f = setup();
    const { archiveInline: _inline, ...deps } = f.deps;
    expect(await pollStage.run(stageJob(pollJob()), deps)).toEqual({ kind: "done" });
    expect(f.archives).toEqual([{ data: handedOff() }]);
    expect(f.copies).toEqual([]);
  });

  it("a store that refuses pauses archiving and hands the row off, which waits in archiving", async () => {
    const f = setup({
      copy: async () => {
        throw new ArchiveStoreError({ code: "access_denied", message: "EACCES: permission denied" });
      },
    });
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.pause.started).toBe(1);
    expect(f.archives).toEqual([{ data: handedOff() }]);
    expect(f.ledger.current()?.status).toBe("archiving");
  });

  it("an unexpected error hands the row off with the same try; the slot is given back", async () => {
    const f = setup({
      copy: async () => {
        throw new TypeError("a bug");
      },
    });
    // A bug is not a retryable archive error: the archive logic fails the row, as the stage would.
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()?.status).toBe("failed");
    expect(f.archives).toEqual([]);

    const g = setup();
    g.deps.ledger = {
      ...g.deps.ledger,
      transition: async (batch, rowId, input) => {
        if (input.to === "archived") throw new Error("redis went away");
        return g.ledger.transition(batch, rowId, input);
      },
    };
    g.archive.ledger = { getRow: g.ledger.getRow, transition: g.deps.ledger.transition };
    expect(await pollStage.run(stageJob(pollJob()), g.deps)).toEqual({ kind: "done" });
    expect(g.archives).toEqual([{ data: handedOff() }]);
    expect(g.ledger.current()?.status).toBe("archiving");
    expect(g.slots.tryTake()).toBeDefined();
  });

  it("a shutdown mid-archive is thrown on: no archive job, the row left archiving, the slot given back", async () => {
    const { f, signal } = abortedMidArchive(new Error("worker closing"));
    await expect(pollStage.run(stageJob(pollJob(), { signal }), f.deps)).rejects.toThrow("aborted");
    expect(f.archives).toEqual([]);
    expect(f.ledger.current()?.status).toBe("archiving");
    expect(f.slots.tryTake()).toBeDefined();
  });

  it("the job released by a shutdown, run again, finds the row archiving and adds the archive job", async () => {
    const { f, signal } = abortedMidArchive();
    await expect(pollStage.run(stageJob(pollJob(), { signal }), f.deps)).rejects.toThrow();
    // The runner released the job with its data as it was: the next run resumes (poll-archiving.ts).
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.archives).toEqual([{ data: handedOff() }]);
    expect(f.settled).toEqual([6]);
  });

  it("the archive stage's jobs hold slots while they run: inline archives fill only what is left", async () => {
    const f = setup({ capacity: 2 });
    await f.ledger.transition("b", "r1", { from: ["generating"], to: "archiving" });
    const jobData = handedOff();
    let stageRunning: (() => void) | undefined;
    const blocked = new Promise<void>((resolve) => {
      stageRunning = resolve;
    });
    let unblock: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => {
      unblock = resolve;
    });
    const archive: ArchiveDeps = {
      ...f.archive,
      archiveSlots: f.slots,
      copyImage: async (copy) => {
        stageRunning?.();
        await gate;
        return f.archive.copyImage!(copy);
      },
    };
    const stageRun = archiveStage.run(stageJob(jobData), archive);
    await blocked;
    // One slot left: one inline archive takes it, a second is refused while both run.
    const held = f.slots.tryTake();
    expect(held).toBeDefined();
    const outcome: InlineArchiveOutcome = await archiveInline(archive, f.slots, jobData, stageJob(pollJob()));
    unblock?.();
    expect(outcome).toEqual({ handOff: jobData, delayMs: 0 });
    await stageRun;
    held?.();
    // Both given back.
    expect(f.slots.tryTake()).toBeDefined();
    expect(f.slots.tryTake()).toBeDefined();
    expect(f.slots.tryTake()).toBeUndefined();
  });
});
