/**
 * A task given up on at KIE_MAX_WAIT may still finish, and be charged: its poll job goes on as
 * late checks (poll-late.ts), which archive a late success without a create or a new reservation,
 * settle a late failure, and end a day after the submit.
 */
import { describe, expect, it } from "vitest";
import { LATE_CHECKS, lateCheckAt } from "../../src/core/backoff.js";
import type { TaskRecord } from "../../src/kie/types.js";
import type { RowRecord } from "../../src/ledger/types.js";
import type { ArchiveJob, PollJob } from "../../src/worker/jobs.js";
import { type PollDeps, pollStage } from "../../src/worker/poll.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob, T0 } from "../helpers/stage-fakes.js";

const MAX_WAIT_MS = 30 * 60_000;
const HOUR = 3_600_000;

function pollJob(overrides: Partial<PollJob> = {}): PollJob {
  return { batch: "b", rowId: "r1", taskId: "t-1", resubmit: 0, submittedAt: T0, checks: 7, ...overrides };
}

/** A row failed at KIE_MAX_WAIT with its task t-1 held, and the poll stage's fakes. */
function setup(task: () => Promise<TaskRecord>, row: Partial<RowRecord> = {}) {
  const ledger = oneRowLedger(
    rowRecord({
      status: "failed",
      taskId: "t-1",
      taskIds: ["t-1"],
      submittedAt: T0,
      creditsReserved: 8,
      error: "no final answer for task t-1 after 30 min (KIE_MAX_WAIT)",
      ...row,
    }),
  );
  const clock = fakeClock();
  const calls = { status: 0, slots: 0, touched: 0, submits: 0, settles: [] as number[] };
  const archives: ArchiveJob[] = [];
  const deps: PollDeps = {
    kie: {
      getTask: async () => {
        calls.status++;
        return task();
      },
    },
    ledger: {
      getRowState: ledger.getRowState,
      getBatch: async () => undefined,
      transition: ledger.transition,
      settleCredits: async (_batch, _row, spent) => {
        calls.settles.push(spent);
        return "settled";
      },
      keepUncertain: async () => 0,
    },
    fleet: {
      pollSlot: async () => {
        calls.slots++;
      },
      pause: async () => true,
      touchInFlight: async () => {
        calls.touched++;
      },
      releaseInFlight: async () => {},
    },
    queues: {
      addSubmit: async () => {
        calls.submits++;
      },
      addArchive: async (data) => {
        archives.push(data);
      },
    },
    clock,
    settings: {
      pollFirstMs: 5_000,
      recordLagGraceMs: 60_000,
      maxWaitMs: MAX_WAIT_MS,
      maxResubmits: 1,
      fileLifetimeMs: 14 * 24 * HOUR,
    },
  };
  return { deps, ledger, clock, calls, archives };
}

const generating = async (): Promise<TaskRecord> => ({ taskId: "t-1", status: "generating", imageUrls: [] });
const success = async (): Promise<TaskRecord> => ({
  taskId: "t-1",
  status: "success",
  imageUrls: ["https://files.example/t-1/0.png"],
  creditsConsumed: 6,
  completedAt: T0 + 2 * HOUR,
});

describe("late checks: when", () => {
  it("at twice, four, eight... times KIE_MAX_WAIT after the submit, the last a day after it", () => {
    const at: number[] = [];
    for (let made = 0; ; made++) {
      const next = lateCheckAt(T0, MAX_WAIT_MS, made);
      if (next === undefined) break;
      at.push((next - T0) / HOUR);
    }
    expect(at).toEqual([1, 2, 4, 8, 16, 24]);
  });

  it("a KIE_MAX_WAIT over half a day still gets one, at twice it; a tiny one a bounded number", () => {
    expect(lateCheckAt(T0, 20 * HOUR, 0)).toBe(T0 + 40 * HOUR);
    expect(lateCheckAt(T0, 20 * HOUR, 1)).toBeUndefined();
    let made = 0;
    while (lateCheckAt(T0, 1, made) !== undefined) made++;
    // From a second: 2 s, 4 s, ... 2^16 s, then the day's end.
    expect(made).toBe(17);
    expect(lateCheckAt(T0, 1, 16)).toBe(T0 + LATE_CHECKS.horizonMs);
  });
});

describe("late checks: what they do", () => {
  it("a task that finished after all: the row goes from failed to archiving, settled from its reservation, archived; no create", async () => {
    const f = setup(success);
    f.clock.advance(2 * HOUR + 1);
    expect(await pollStage.run(stageJob(pollJob({ late: 1 })), f.deps)).toEqual({ kind: "done" });
    expect(f.calls).toMatchObject({ status: 1, slots: 1, touched: 0, submits: 0 });
    const move = f.ledger.transitions[0]!;
    expect(move).toMatchObject({ from: ["failed"], ifTask: "t-1", to: "archiving" });
    expect(move.settle).toEqual({ spent: 6, taskId: "t-1" });
    expect(f.ledger.current()).toMatchObject({ status: "archiving", completedAt: T0 + 2 * HOUR });
    expect(f.ledger.current()?.error).toBeUndefined();
    expect(f.archives).toEqual([
      expect.objectContaining({ taskId: "t-1", imageUrls: ["https://files.example/t-1/0.png"] }),
    ]);
  });

  it("still generating: the next late check, the task's in-flight slot left alone; after the day's, done, the row saying so", async () => {
    const f = setup(generating);
    f.clock.advance(HOUR + 5);
    expect(await pollStage.run(stageJob(pollJob({ late: 0 })), f.deps)).toEqual({
      kind: "delay",
      ms: HOUR - 5,
      data: pollJob({ late: 1 }),
    });
    expect(f.calls).toMatchObject({ status: 1, slots: 1, touched: 0 });
    f.clock.advance(23 * HOUR);
    expect(await pollStage.run(stageJob(pollJob({ late: 5 })), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()).toMatchObject({ status: "failed", creditsReserved: 8 });
    expect(f.ledger.current()?.error).toContain(
      "a day after its submit (KIE_MAX_WAIT, then its late checks)",
    );
    expect(f.ledger.transitions).toEqual([expect.objectContaining({ from: ["failed"], ifTask: "t-1" })]);
    expect(f.ledger.transitions[0]?.to).toBeUndefined();
  });

  it("KIE not knowing the task counts as a check (it is not asked again a minute on)", async () => {
    const { KieError } = await import("../../src/kie/errors.js");
    const f = setup(async () => {
      throw new KieError({ code: "record_not_found", message: "recordInfo is null", retryable: true });
    });
    f.clock.advance(HOUR);
    expect(await pollStage.run(stageJob(pollJob({ late: 0 })), f.deps)).toEqual({
      kind: "delay",
      ms: HOUR,
      data: pollJob({ late: 1 }),
    });
  });

  it("a check without an answer about the task (a 500, no worker with its key) counts for nothing: asked again a minute on, until an hour past the last", async () => {
    const { KieError } = await import("../../src/kie/errors.js");
    const f = setup(async () => {
      throw new KieError({ code: "server_error", message: "502", retryable: true });
    });
    // At the last check's time (the day's): not given up, asked again, the count unchanged.
    f.clock.advance(24 * HOUR);
    expect(await pollStage.run(stageJob(pollJob({ late: 5 })), f.deps)).toEqual({
      kind: "delay",
      ms: 60_000,
      data: pollJob({ late: 5 }),
    });
    // Put off longer, asked again as long again (at most 30 minutes).
    f.clock.advance(10 * 60_000);
    expect(await pollStage.run(stageJob(pollJob({ late: 5 })), f.deps)).toMatchObject({
      kind: "delay",
      ms: 10 * 60_000,
    });
    f.clock.advance(40 * 60_000);
    expect(await pollStage.run(stageJob(pollJob({ late: 5 })), f.deps)).toMatchObject({
      kind: "delay",
      ms: 30 * 60_000,
    });
    expect(f.ledger.transitions).toEqual([]);
    // An hour past the last check's time: given up.
    f.clock.advance(10 * 60_000 + 1);
    expect(await pollStage.run(stageJob(pollJob({ late: 5 })), f.deps)).toEqual({ kind: "done" });
    // A task made with a key this worker lacks: no status call, asked again as well.
    const keyed = setup(success, { taskKeys: { "t-1": "k-other" } });
    keyed.deps.keys = { lane: () => undefined, held: async () => true } as never;
    keyed.clock.advance(HOUR);
    expect(await pollStage.run(stageJob(pollJob({ late: 0 })), keyed.deps)).toEqual({
      kind: "delay",
      ms: 60_000,
      data: pollJob({ late: 0 }),
    });
    expect(keyed.calls.status).toBe(0);
    // No worker with the key a day on: the row's error names the key, not a silent KIE.
    keyed.clock.advance(24 * HOUR + 1);
    expect(await pollStage.run(stageJob(pollJob({ late: 5 })), keyed.deps)).toEqual({ kind: "done" });
    expect(keyed.ledger.current()?.error).toContain("no worker had API key k-other");
  });

  it("a task that failed after all: settled as the task, its failure named, not resubmitted", async () => {
    const f = setup(async () => ({
      taskId: "t-1",
      status: "failed",
      imageUrls: [],
      failCode: "500",
      failMessage: "boom",
    }));
    f.clock.advance(HOUR);
    expect(await pollStage.run(stageJob(pollJob({ late: 0 })), f.deps)).toEqual({ kind: "done" });
    expect(f.calls.settles).toEqual([8]);
    expect(f.calls.submits).toBe(0);
    expect(f.ledger.current()).toMatchObject({ status: "failed", taskIds: ["t-1"] });
    expect(f.ledger.current()?.error).toContain(
      "generation failed (500): boom [task t-1], after KIE_MAX_WAIT",
    );
  });

  it("a row moved on meanwhile (a retry polls it with its own job): no status call, done", async () => {
    const f = setup(success, { status: "generating" });
    expect(await pollStage.run(stageJob(pollJob({ late: 0 })), f.deps)).toEqual({ kind: "done" });
    expect(f.calls.status).toBe(0);
    expect(f.ledger.transitions).toEqual([]);
  });
});

describe("late checks: a run cut short", () => {
  it("a late success whose archive was cut short (a shutdown): its next run resumes the archive, not done", async () => {
    const f = setup(success, { status: "archiving", completedAt: T0 + 2 * HOUR });
    f.clock.advance(2 * HOUR + 5);
    await pollStage.run(stageJob(pollJob({ late: 1 })), f.deps);
    expect(f.calls.status).toBe(1);
    expect(f.archives).toEqual([expect.objectContaining({ taskId: "t-1" })]);
  });

  it("a row failed at KIE_MAX_WAIT by a run that died before saving its late checks: they start at the next run", async () => {
    const f = setup(generating);
    f.clock.advance(MAX_WAIT_MS + 10);
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({
      kind: "delay",
      ms: MAX_WAIT_MS - 10,
      data: pollJob({ late: 0 }),
    });
    expect(f.calls.status).toBe(0);
    // One failed for another reason, its task settled (no reservation held): done.
    const settled = setup(generating, { creditsReserved: 0 });
    settled.clock.advance(MAX_WAIT_MS + 10);
    expect(await pollStage.run(stageJob(pollJob()), settled.deps)).toEqual({ kind: "done" });
  });

  it("a KIE_MAX_WAIT move whose reply was lost, sent again, finds the row failed for its task: the late checks still start", async () => {
    const f = setup(generating, { status: "generating" });
    const transition = f.deps.ledger.transition;
    // The first answer lost: the move is made, and the call answers as a refusal would.
    f.deps.ledger.transition = async (batch, rowId, input) => {
      const made = await transition(batch, rowId, input);
      return { ...made, ok: false };
    };
    f.clock.advance(MAX_WAIT_MS + 10);
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toMatchObject({
      kind: "delay",
      data: { late: 0 },
    });
  });
});
