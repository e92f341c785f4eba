import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { pollDelay, retryDelay } from "../../src/core/backoff.js";
import { readAnswer } from "../../src/kie/answer.js";
import { KieError } from "../../src/kie/errors.js";
import { normalizeRecord } from "../../src/kie/normalize.js";
import { statusRecordSchema } from "../../src/kie/schemas.js";
import type { TaskRecord } from "../../src/kie/types.js";
import type { BatchSummary, RowRecord } from "../../src/ledger/types.js";
import type { ArchiveJob, PollJob, SubmitJob } from "../../src/worker/jobs.js";
import { type PollDeps, pollStage } from "../../src/worker/poll.js";
import { firstPollDelay } from "../../src/worker/poll-schedule.js";
import { capturingLogger } from "../helpers/capturing-logger.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob, T0 } from "../helpers/stage-fakes.js";

const MAX_WAIT_MS = 30 * 60_000;
/** The schedule the fakes' settings make (polling mode, a 5 s first step). */
const SCHEDULE = { firstMs: 5_000, maxWaitMs: MAX_WAIT_MS };
/** Delay after `checks` checks, `elapsedMs` after the submit, at jitter factor 1. */
const nextDelay = (checks: number, elapsedMs = 0) => pollDelay(checks, elapsedMs, SCHEDULE, () => 0.5);

// Jitter factor 1: every delay is the schedule's exact step.
beforeEach(() => {
  vi.spyOn(Math, "random").mockReturnValue(0.5);
});
afterEach(() => {
  vi.restoreAllMocks();
});

function pollJob(overrides: Partial<PollJob> = {}): PollJob {
  return { batch: "b", rowId: "r1", taskId: "t-1", resubmit: 0, submittedAt: T0, checks: 0, ...overrides };
}

/** A row whose task t-1 is in flight, the poll stage's fakes, and what they saw. */
function setup(
  options: {
    row?: Partial<RowRecord>;
    task?: () => Promise<TaskRecord>;
    cancelledAt?: number;
    priority?: number;
  } = {},
) {
  const ledger = oneRowLedger(
    rowRecord({ status: "submitted", taskId: "t-1", taskIds: ["t-1"], submittedAt: T0, ...options.row }),
  );
  const clock = fakeClock();
  const statusCalls: string[] = [];
  const settled: number[] = [];
  /** The task each settle named (undefined: the row's current one). */
  const settledTasks: (string | undefined)[] = [];
  const released: string[] = [];
  const keptUncertain: number[] = [];
  const touched: string[] = [];
  const archives: ArchiveJob[] = [];
  const submits: SubmitJob[] = [];
  const deps: PollDeps = {
    kie: {
      getTask: async (taskId) => {
        statusCalls.push(taskId);
        return (options.task ?? (async () => ({ taskId, status: "generating", imageUrls: [] })))();
      },
    },
    ledger: {
      getRowState: ledger.getRowState,
      getBatch: async (batch) =>
        options.cancelledAt === undefined && options.priority === undefined
          ? undefined
          : ({ batch, cancelledAt: options.cancelledAt, priority: options.priority } as BatchSummary),
      // A success's settle goes with its move to archiving (one call): seen here as a settle.
      transition: async (batch, rowId, input) => {
        const result = await ledger.transition(batch, rowId, input);
        if (input.settle && result.settled) {
          settled.push(input.settle.spent);
          settledTasks.push(input.settle.taskId);
        }
        return result;
      },
      settleCredits: async (_batch, _rowId, spent, taskId) => {
        settled.push(spent);
        settledTasks.push(taskId);
        return "settled";
      },
      keepUncertain: async (_batch, _rowId, credits) => {
        keptUncertain.push(credits);
        return credits;
      },
    },
    fleet: {
      pollSlot: async () => {},
      pause: async () => true,
      touchInFlight: async (key) => {
        touched.push(key);
      },
      releaseInFlight: async (key) => {
        released.push(key);
      },
    },
    queues: {
      addSubmit: async (data, submitOptions) => {
        submits.push(submitOptions === undefined ? data : { ...data, ...submitOptions });
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
      fileLifetimeMs: 14 * 24 * 3_600_000,
    },
  };
  return {
    deps,
    ledger,
    clock,
    statusCalls,
    settled,
    settledTasks,
    released,
    keptUncertain,
    touched,
    archives,
    submits,
  };
}

describe("poll stage: a run about a task the row left while its status call was out (a stale run after a lapsed lock)", () => {
  /** The row's t-1 resubmitted as t-2 by another run of this job while this one's call was out. */
  const leftFor = (f: ReturnType<typeof setup>) => {
    const row = f.ledger.current()!;
    Object.assign(row, { status: "submitted", taskId: "t-2", taskIds: ["t-1", "t-2"], resubmits: 1 });
  };
  it.each([
    ["failed", { status: "failed" as const, imageUrls: [], creditsConsumed: 0 }],
    [
      "success",
      { status: "success" as const, imageUrls: ["https://files.example/t-1/0.png"], creditsConsumed: 8 },
    ],
  ])(
    "KIE says %s: settled as t-1 only (t-2's reservation untouched), the row left on t-2, no job added",
    async (_name, answer) => {
      const f = setup({
        task: async () => {
          leftFor(f);
          return { taskId: "t-1", ...answer };
        },
      });
      expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
      expect(f.settledTasks).toEqual(["t-1"]);
      expect(f.ledger.current()).toMatchObject({ status: "submitted", taskId: "t-2", resubmits: 1 });
      expect(f.submits).toEqual([]);
      expect(f.archives).toEqual([]);
    },
  );

  it("KIE says generating: the row on t-2 is not marked generating by t-1's run", async () => {
    const f = setup({
      task: async () => {
        leftFor(f);
        return { taskId: "t-1", status: "generating", imageUrls: [] };
      },
    });
    await pollStage.run(stageJob(pollJob()), f.deps);
    expect(f.ledger.current()).toMatchObject({ status: "submitted", taskId: "t-2" });
  });
});

describe("poll stage: KIE's stated cost above the row's estimate", () => {
  it.each([
    ["success", { status: "success" as const, imageUrls: ["https://files.example/t-1/0.png"] }],
    ["failed", { status: "failed" as const, imageUrls: [] }],
  ])("%s: logged at warn with both figures; at or under the estimate, nothing", async (_name, answer) => {
    for (const [charged, warned] of [
      [12, true],
      [8, false],
    ] as const) {
      const captured = capturingLogger();
      const f = setup({
        row: { estimatedCredits: 8 },
        task: async () => ({ taskId: "t-1", ...answer, creditsConsumed: charged }),
      });
      await pollStage.run(stageJob(pollJob(), { log: captured.log }), f.deps);
      expect(f.settled).toEqual([charged]);
      expect(captured.text().includes("KIE charged more than the row's estimate")).toBe(warned);
      if (warned) expect(captured.text()).toMatch(/"creditsConsumed":12,"estimatedCredits":8/);
    }
  });
});

describe("poll stage", () => {
  it("owns the rows waiting for their generation", () => {
    expect(pollStage.name).toBe("poll");
    expect(pollStage.owns).toEqual(["submitted", "generating"]);
  });

  it("a task still generating marks the row generating and comes back after the next backoff step", async () => {
    const f = setup();
    f.clock.advance(20_000);
    const result = await pollStage.run(stageJob(pollJob({ checks: 2 })), f.deps);
    expect(result).toEqual({ kind: "delay", ms: nextDelay(3, 20_000), data: pollJob({ checks: 3 }) });
    expect(f.ledger.current()).toMatchObject({ status: "generating", generatingAt: T0 + 20_000 });
    expect(f.touched).toEqual(["b/r1"]);
    expect(f.archives).toEqual([]);
  });

  it("a resume's not-found mark is not carried by a normal poll (a row whose record was lost and found again)", async () => {
    const f = setup();
    const job = pollJob({ checks: 2, archiveNotFound: { since: T0, waitedMs: 50_000 } });
    const result = await pollStage.run(stageJob(job), f.deps);
    expect(result).toMatchObject({ kind: "delay", data: pollJob({ checks: 3 }) });
    expect(result.kind === "delay" && "archiveNotFound" in result.data).toBe(false);
  });

  it("the delay follows KIE_POLL_INTERVAL: a 1 s first step scales the whole ladder", async () => {
    const f = setup({ row: { status: "generating" } });
    const result = await pollStage.run(stageJob(pollJob({ checks: 2 })), {
      ...f.deps,
      settings: { ...f.deps.settings, pollFirstMs: 1_000 },
    });
    expect(result).toMatchObject({ kind: "delay", ms: 4_096 });
  });

  it.each([
    ["polling mode: KIE_POLL_INTERVAL", {}, 5_000],
    ["webhook mode: a third of KIE_MAX_WAIT", { callbackUrl: "https://hooks.example/kie" }, MAX_WAIT_MS / 3],
    [
      "webhook mode without a known KIE_MAX_WAIT: polling mode's",
      { callbackUrl: "https://hooks.example/kie", maxWaitMs: undefined },
      5_000,
    ],
  ])("the first check after a submit, %s", (_name, settings, expected) => {
    expect(firstPollDelay({ pollFirstMs: 5_000, maxWaitMs: MAX_WAIT_MS, ...settings })).toBe(expected);
  });

  it("in webhook mode a task still generating waits the safety net: a sixth of KIE_MAX_WAIT", async () => {
    const f = setup({ row: { status: "generating" } });
    f.clock.advance(10 * 60_000);
    const result = await pollStage.run(stageJob(pollJob({ checks: 1 })), {
      ...f.deps,
      settings: { ...f.deps.settings, callbackUrl: "https://hooks.example/kie" },
    });
    expect(result).toEqual({ kind: "delay", ms: MAX_WAIT_MS / 6, data: pollJob({ checks: 2 }) });
  });

  it("in webhook mode a failed status call comes back on polling mode's ladder: its callback is spent", async () => {
    const f = setup({
      task: async () => {
        throw new KieError({ code: "server_error", message: "500", retryable: true });
      },
    });
    const result = await pollStage.run(stageJob(pollJob({ checks: 4 })), {
      ...f.deps,
      settings: { ...f.deps.settings, callbackUrl: "https://hooks.example/kie" },
    });
    expect(result).toMatchObject({
      kind: "delay",
      ms: Math.max(nextDelay(5), retryDelay(4, { rand: () => 0.5 })),
    });
  });

  it("near KIE_MAX_WAIT the next check lands one first step past it, so the row fails on time", async () => {
    const f = setup({ row: { status: "generating" } });
    f.clock.advance(MAX_WAIT_MS - 10_000);
    const result = await pollStage.run(stageJob(pollJob({ checks: 12 })), f.deps);
    expect(result).toMatchObject({ kind: "delay", ms: 10_000 + 5_000 });
  });

  it("a success settles the credits, moves the row to archiving and adds one archive job", async () => {
    const f = setup({
      task: async () => ({
        taskId: "t-1",
        status: "success",
        imageUrls: ["https://files.example/t-1.png"],
        completedAt: T0 + 40_000,
        creditsConsumed: 6,
      }),
    });
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.settled).toEqual([6]);
    expect(f.ledger.current()).toMatchObject({ status: "archiving", completedAt: T0 + 40_000 });
    expect(f.archives).toEqual([
      {
        batch: "b",
        rowId: "r1",
        taskId: "t-1",
        imageUrls: ["https://files.example/t-1.png"],
        completedAt: T0 + 40_000,
        creditsConsumed: 6,
        tries: 0,
      },
    ]);
    expect(f.released).toEqual(["b/r1"]);
  });

  it.each([
    ["text-to-image, priced by KIE_PRICES", { acceleration_level: "none" }, 5],
    ["text-to-image without an acceleration", {}, 3],
    ["edit", { model: "edit", image_url: "https://img.example/a.png" }, 12],
  ])(
    "an answer without creditsConsumed settles %s at the row's own estimate",
    async (_n, params, estimate) => {
      for (const status of ["success", "failed"] as const) {
        const f = setup({
          row: { params, estimatedCredits: estimate },
          task: async () => ({ taskId: "t-1", status, imageUrls: ["https://files.example/t-1.png"] }),
        });
        await pollStage.run(stageJob(pollJob()), f.deps);
        expect(f.settled).toEqual([estimate]);
      }
    },
  );

  it("a move to archiving whose reply was lost and was sent again still adds the archive job", async () => {
    const f = setup({
      task: async () => ({ taskId: "t-1", status: "success", imageUrls: ["https://files.example/t-1.png"] }),
    });
    const transition = f.deps.ledger.transition;
    f.deps.ledger.transition = async (batch, rowId, input) => {
      const first = await transition(batch, rowId, input);
      return first.ok ? { ...first, ok: false } : first;
    };
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()).toMatchObject({ status: "archiving" });
    expect(f.archives.map((a) => a.taskId)).toEqual(["t-1"]);
  });

  it("a success without an image URL fails the row and archives nothing", async () => {
    const f = setup({ task: async () => ({ taskId: "t-1", status: "success", imageUrls: [] }) });
    await pollStage.run(stageJob(pollJob()), f.deps);
    // Charged at the row's price, since the API did not say.
    expect(f.settled).toEqual([8]);
    expect(f.ledger.current()).toMatchObject({
      status: "failed",
      error: "task t-1 succeeded without an image URL",
    });
    expect(f.archives).toEqual([]);
  });

  it("a task still generating after KIE_MAX_WAIT fails the row and keeps its task: the job goes on as its late checks", async () => {
    const f = setup();
    f.clock.advance(MAX_WAIT_MS + 1);
    // The first late check at twice KIE_MAX_WAIT after the submit.
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({
      kind: "delay",
      ms: MAX_WAIT_MS - 1,
      data: { ...pollJob(), late: 0 },
    });
    const row = f.ledger.current();
    expect(row).toMatchObject({ status: "failed", taskIds: ["t-1"] });
    expect(row?.error).toContain("KIE_MAX_WAIT");
    expect(f.released).toEqual(["b/r1"]);
  });

  /** KIE's answer for a generation that failed on its side. */
  const failedGeneration = async (): Promise<TaskRecord> => ({
    taskId: "t-1",
    status: "failed",
    imageUrls: [],
    failCode: "500",
    failMessage: "boom",
  });

  it("a failed generation is resubmitted as a new lineage while resubmits are left", async () => {
    const f = setup({ task: failedGeneration });
    await pollStage.run(stageJob(pollJob()), f.deps);
    expect(f.ledger.current()).toMatchObject({ status: "queued", resubmits: 1 });
    expect(f.submits).toEqual([{ batch: "b", rowId: "r1", resubmit: 1 }]);
  });

  it("a resubmit's job takes the batch's priority, as the row's first job did", async () => {
    const f = setup({ task: failedGeneration, priority: 4 });
    await pollStage.run(stageJob(pollJob()), f.deps);
    expect(f.submits).toEqual([{ batch: "b", rowId: "r1", resubmit: 1, priority: 4 }]);
  });

  it("a failed generation of a batch `cancel` ran on is not resubmitted (a new create, paid) but fails", async () => {
    const f = setup({ task: failedGeneration, cancelledAt: T0 });
    await pollStage.run(stageJob(pollJob()), f.deps);
    expect(f.ledger.current()).toMatchObject({ status: "failed", resubmits: 0 });
    expect(f.ledger.current()?.error).toMatch(
      /generation failed \(500\): boom .*not resubmitted: the batch was cancelled/,
    );
    expect(f.submits).toEqual([]);
  });

  it("a retry's grant does not resubmit in a batch marked cancelled (every retry clears the mark first: a mark is a later cancel)", async () => {
    const f = setup({ task: failedGeneration, cancelledAt: T0 + 1, row: { resubmits: 5 } });
    await pollStage.run(stageJob(pollJob({ resubmitOnFailure: true, submittedAt: T0 })), f.deps);
    expect(f.ledger.current()).toMatchObject({ status: "failed", resubmits: 5 });
    expect(f.submits).toEqual([]);
    // Without the mark, the grant goes past the limit.
    const granted = setup({ task: failedGeneration, row: { resubmits: 5 } });
    await pollStage.run(stageJob(pollJob({ resubmitOnFailure: true, submittedAt: T0 })), granted.deps);
    expect(granted.ledger.current()).toMatchObject({ status: "queued", resubmits: 6 });
    expect(granted.submits).toHaveLength(1);
  });

  it("a resubmit move sent again after a lost reply (ok=0, the row queued by its first try) still adds the submit", async () => {
    const f = setup({ task: failedGeneration });
    const transition = f.deps.ledger.transition;
    const deps: PollDeps = {
      ...f.deps,
      ledger: {
        ...f.deps.ledger,
        // The first try applied, its reply lost; ioredis's re-send finds the row already queued.
        transition: async (batch, rowId, input) => {
          const first = await transition(batch, rowId, input);
          return input.to === "queued" ? await transition(batch, rowId, input) : first;
        },
      },
    };
    await pollStage.run(stageJob(pollJob()), deps);
    expect(f.ledger.current()).toMatchObject({ status: "queued", resubmits: 1, taskIds: ["t-1"] });
    expect(f.submits).toEqual([{ batch: "b", rowId: "r1", resubmit: 1 }]);
  });

  it("a failed generation past KIE_MAX_RESUBMITS fails the row with the provider's message", async () => {
    const f = setup({
      row: { resubmits: 1 },
      task: failedGeneration,
    });
    await pollStage.run(stageJob(pollJob()), f.deps);
    expect(f.ledger.current()).toMatchObject({
      status: "failed",
      error: "generation failed (500): boom [task t-1]",
    });
    expect(f.submits).toEqual([]);
  });

  it("code 501 as the status call's answer is a failed generation: settled at the estimate, then resubmitted", async () => {
    const f = setup({
      task: async () => {
        throw statusError({ code: 501, msg: "Generation failed" });
      },
    });
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    // The row's estimate (acceleration "none": 8), which its reservation holds.
    expect(f.settled).toEqual([8]);
    expect(f.released).toEqual(["b/r1"]);
    expect(f.ledger.current()).toMatchObject({ status: "queued", resubmits: 1 });
    expect(f.ledger.current()?.error).toContain("generation failed (501)");
    expect(f.submits).toEqual([{ batch: "b", rowId: "r1", resubmit: 1 }]);
  });

  it("'recordInfo is null' just after the submit is lag: look again later, change nothing", async () => {
    const unknown = new KieError({
      code: "record_not_found",
      message: "recordInfo is null",
      retryable: false,
    });
    const f = setup({
      task: async () => {
        throw unknown;
      },
    });
    f.clock.advance(10_000);
    const result = await pollStage.run(stageJob(pollJob()), f.deps);
    expect(result).toEqual({
      kind: "delay",
      ms: 8_000,
      data: pollJob({ checks: 1, notFound: { since: T0 + 10_000, waitedMs: 8_000 } }),
    });
    expect(f.ledger.transitions).toEqual([]);
  });

  it("a status call that fails for a while is retried no sooner than the retry backoff", async () => {
    const f = setup({
      task: async () => {
        throw new KieError({ code: "server_error", message: "500", retryable: true });
      },
    });
    const result = await pollStage.run(stageJob(pollJob({ checks: 4 })), f.deps);
    const expected = Math.max(nextDelay(5), retryDelay(4, { rand: () => 0.5 }));
    expect(result).toMatchObject({ kind: "delay", ms: expected, data: { checks: 5 } });
    expect(f.ledger.transitions).toEqual([]);
  });

  it.each([["a row whose current task is newer", { taskId: "t-2", taskIds: ["t-1", "t-2"] }]])(
    "%s: no status call, nothing changes",
    async (_name, row) => {
      const f = setup({ row });
      expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
      expect(f.statusCalls).toEqual([]);
      expect(f.ledger.transitions).toEqual([]);
    },
  );

  // Issue 9: a run that moved the row to archiving may have died before adding the archive job.
  it("a row already archiving for this task: one status call, the archive job added again, the row unchanged", async () => {
    const f = setup({
      row: { status: "archiving", completedAt: T0 + 5 },
      task: async () => ({ taskId: "t-1", status: "success", imageUrls: ["https://files.example/a.png"] }),
    });
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.statusCalls).toEqual(["t-1"]);
    expect(f.archives).toEqual([
      {
        batch: "b",
        rowId: "r1",
        taskId: "t-1",
        imageUrls: ["https://files.example/a.png"],
        completedAt: T0 + 5,
        tries: 0,
      },
    ]);
    expect(f.ledger.transitions).toEqual([]);
    // The run that moved it gave its in-flight slot back beside the move: if that call failed
    // (the move made), this run gives it back, or the cap would count a finished task for an hour.
    expect(f.released).toEqual(["b/r1"]);
  });

  it("a success whose in-flight release fails (the move made) throws, and the run again gives the slot back", async () => {
    const f = setup({
      task: async () => ({ taskId: "t-1", status: "success", imageUrls: ["https://files.example/a.png"] }),
    });
    const failing: PollDeps = {
      ...f.deps,
      fleet: {
        ...f.deps.fleet,
        releaseInFlight: async () => {
          throw new Error("Connection is closed.");
        },
      },
    };
    await expect(pollStage.run(stageJob(pollJob()), failing)).rejects.toThrow("Connection is closed.");
    expect(f.ledger.current()).toMatchObject({ status: "archiving" });
    expect(f.settled).toEqual([8]);
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.released).toEqual(["b/r1"]);
    expect(f.archives).toHaveLength(1);
  });
});

// A row archiving whose task KIE can no longer give: it must end, not wait for a reconciler that
// sends this poll again and again (the row's credits were settled when it moved to archiving).
describe("poll stage: a row archiving whose images KIE can no longer give", () => {
  const DAY_MS = 86_400_000;
  /** Completed at T0 + 5: the fake settings' 14-day file lifetime ends at T0 + 5 + 14 days. */
  const LIFETIME_END = T0 + 5 + 14 * DAY_MS;
  const archiving = (task: () => Promise<TaskRecord>) =>
    setup({ row: { status: "archiving", completedAt: T0 + 5 }, task });
  const unknown = () =>
    new KieError({ code: "record_not_found", message: "recordInfo is null", retryable: true });
  const fails = (error: () => KieError) => async (): Promise<TaskRecord> => {
    throw error();
  };
  /** Runs the job as BullMQ would (each delay waited, its data fed back) until it is done; the runs made. */
  async function runUntilDone(f: ReturnType<typeof setup>, first: PollJob, most = 50): Promise<number> {
    let data = first;
    for (let run = 1; run <= most; run++) {
      const result = await pollStage.run(stageJob(data), f.deps);
      if (result.kind === "done") return run;
      if (result.kind !== "delay") throw new Error(`unexpected ${result.kind}`);
      f.clock.advance(result.ms);
      data = result.data;
    }
    throw new Error(`not done after ${most} runs`);
  }

  it("KIE does not know the task: asked again for the record-lag grace, counted from this resume, then the row fails", async () => {
    const f = archiving(fails(unknown));
    // A mark left by the polls before the task succeeded (a minute of "not found" then) counts for nothing.
    const stale = pollJob({ checks: 4, notFound: { since: T0 - 120_000, waitedMs: 90_000 } });
    const first = await pollStage.run(stageJob(stale), f.deps);
    expect(first).toMatchObject({ kind: "delay", data: { archiveNotFound: { since: T0 } } });
    expect(first.kind === "delay" && first.data.notFound).toBeUndefined();
    expect(f.ledger.transitions).toEqual([]);

    const startedAt = f.clock.now();
    await runUntilDone(f, stale);
    expect(f.clock.now() - startedAt).toBeGreaterThanOrEqual(60_000);
    const row = f.ledger.current();
    expect(row).toMatchObject({ status: "failed", taskId: "t-1" });
    expect(row?.error).toBe("archive failed: status of task t-1 failed: recordInfo is null");
    expect(f.archives).toEqual([]);
    // Paid when it succeeded: nothing settled again, kept uncertain or resubmitted.
    expect(f.settled).toEqual([]);
    expect(f.keptUncertain).toEqual([]);
    expect(f.submits).toEqual([]);
  });

  it("an error between two 'not found' answers keeps the grace's mark", async () => {
    let calls = 0;
    const f = archiving(async () => {
      calls++;
      throw calls === 2
        ? new KieError({ code: "server_error", message: "code 500", retryable: true })
        : unknown();
    });
    const first = await pollStage.run(stageJob(pollJob()), f.deps);
    if (first.kind !== "delay") throw new Error("expected a delay");
    const second = await pollStage.run(stageJob(first.data), f.deps);
    expect(second).toMatchObject({ kind: "delay", data: { archiveNotFound: first.data.archiveNotFound } });
  });

  it("KIE refuses the status call with a final code in its answer: the row fails with it at once", async () => {
    const f = archiving(fails(() => statusError({ code: 501, msg: "Generation failed" })));
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()).toMatchObject({ status: "failed" });
    expect(f.ledger.current()?.error).toContain("code 501");
    expect(f.archives).toEqual([]);
  });

  it("an archive job of the row still there (this poll ran again beside it): the row is left to that job", async () => {
    const f = archiving(async () => ({ taskId: "t-1", status: "failed", imageUrls: [], failCode: "500" }));
    const asked: string[] = [];
    const deps: PollDeps = {
      ...f.deps,
      queues: {
        ...f.deps.queues,
        archiveJobLive: async (batch, rowId) => {
          asked.push(`${batch}/${rowId}`);
          return true;
        },
      },
    };
    expect(await pollStage.run(stageJob(pollJob()), deps)).toEqual({ kind: "done" });
    expect(asked).toEqual(["b/r1"]);
    expect(f.ledger.current()).toMatchObject({ status: "archiving" });
    expect(f.ledger.transitions).toEqual([]);
  });

  it("KIE says the task failed: the row fails with its answer at once", async () => {
    const f = archiving(async () => ({
      taskId: "t-1",
      status: "failed",
      imageUrls: [],
      failCode: "500",
      failMessage: "internal",
    }));
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()).toMatchObject({ status: "failed" });
    expect(f.ledger.current()?.error).toContain(
      "task t-1 failed (500: internal) when asked again for its images",
    );
    expect(f.archives).toEqual([]);
    expect(f.settled).toEqual([]);
  });

  it.each([
    // What the client throws for a bare 404 (a proxy's, a wrong KIE_BASE_URL): says nothing of the task.
    [
      "a 4xx that is not KIE's",
      () => new KieError({ code: "http_error", message: "HTTP 404", retryable: false }),
      "HTTP 404",
    ],
    ["a 5xx", () => new KieError({ code: "server_error", message: "code 500", retryable: true }), "code 500"],
    [
      "a success without an image URL, as the client reads it",
      () => statusError(jobsRecord({ state: "success", resultJson: JSON.stringify({ resultUrls: [] }) })),
      "without any result URL",
    ],
  ])(
    "%s is asked again until the task's file lifetime is over, then the row fails",
    async (_name, error, said) => {
      const f = archiving(fails(error));
      f.clock.advance(13 * DAY_MS);
      const result = await pollStage.run(stageJob(pollJob({ checks: 30 })), f.deps);
      expect(result).toMatchObject({ kind: "delay", data: { checks: 31 } });
      // The wait grows to 5 minutes at most (a resume waits on nothing but its row).
      expect(result.kind === "delay" && result.ms).toBeLessThanOrEqual(5 * 60_000);
      expect(f.ledger.transitions).toEqual([]);

      f.clock.advance(LIFETIME_END - f.clock.now());
      expect(await pollStage.run(stageJob(pollJob({ checks: 31 })), f.deps)).toEqual({ kind: "done" });
      const row = f.ledger.current();
      expect(row).toMatchObject({ status: "failed" });
      expect(row?.error).toContain(said);
      expect(row?.error).toContain("past the task's file lifetime (KIE_FILE_LIFETIME)");
      expect(f.archives).toEqual([]);
    },
  );

  it("a task KIE says is still generating is asked again (its not-found mark goes) until the file lifetime is over", async () => {
    const f = archiving(async () => ({ taskId: "t-1", status: "generating", imageUrls: [] }));
    const job = pollJob({ checks: 2, archiveNotFound: { since: T0, waitedMs: 1_000 } });
    expect(await pollStage.run(stageJob(job), f.deps)).toMatchObject({
      kind: "delay",
      data: pollJob({ checks: 3 }),
    });
    f.clock.advance(LIFETIME_END - f.clock.now());
    expect(await pollStage.run(stageJob(pollJob({ checks: 3 })), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()?.error).toContain(
      "task t-1 is still generating, past the task's file lifetime",
    );
  });
});

/** What the KIE client throws for a status answer with this body (the client's own two steps). */
function statusError(body: unknown): KieError {
  const endpoint = "GET /api/v1/jobs/recordInfo";
  try {
    const record = readAnswer(
      { httpStatus: 200, body: JSON.stringify(body) },
      { operation: "status", endpoint },
      statusRecordSchema,
    );
    normalizeRecord(record, "t-1", endpoint);
  } catch (error) {
    return error as KieError;
  }
  throw new Error("the answer was read without an error");
}

const jobsRecord = (fields: Record<string, unknown>) => ({
  code: 200,
  msg: "success",
  data: { taskId: "t-1", model: "qwen/text-to-image", createTime: T0, ...fields },
});

describe("poll stage: KIE_MAX_WAIT covers every answer that is not final", () => {
  it.each([
    ["a repeated code 500", () => statusError({ code: 500, msg: "Server error" }), "code 500"],
    [
      "a success with no image URL",
      () => statusError(jobsRecord({ state: "success", resultJson: JSON.stringify({ resultUrls: [] }) })),
      "without any result URL",
    ],
    ["an unknown state", () => statusError(jobsRecord({ state: "teleporting" })), "unexpected"],
  ])(
    "%s past the deadline fails the row with what KIE said, task kept for `retry`",
    async (_name, error, said) => {
      expect(error().retryable).toBe(true);
      const f = setup({
        task: async () => {
          throw error();
        },
      });
      // Before the deadline: looked at again later, nothing changes.
      f.clock.advance(MAX_WAIT_MS - 1_000);
      expect(await pollStage.run(stageJob(pollJob({ checks: 9 })), f.deps)).toMatchObject({ kind: "delay" });
      expect(f.ledger.transitions).toEqual([]);

      f.clock.advance(2_000);
      expect(await pollStage.run(stageJob(pollJob({ checks: 10 })), f.deps)).toMatchObject({
        kind: "delay",
        data: { late: 0 },
      });
      const row = f.ledger.current();
      expect(row).toMatchObject({ status: "failed", taskId: "t-1", taskIds: ["t-1"] });
      expect(row?.error).toContain("KIE_MAX_WAIT");
      expect(row?.error).toContain(said);
      expect(row?.error).toContain("`kie-batch retry` polls it again");
      expect(f.released).toEqual(["b/r1"]);
      // The task may still finish and be charged: its reservation is neither released nor kept uncertain.
      expect(f.keptUncertain).toEqual([]);
    },
  );

  it.each<[string, KieError]>([
    [
      "a 429",
      new KieError({ code: "rate_limited", message: "429", retryable: true, fleetEffect: "rate-limited" }),
    ],
    [
      "KIE's maintenance (455)",
      new KieError({ code: "maintenance", message: "455", retryable: true, fleetEffect: "maintenance" }),
    ],
    ["a 5xx", new KieError({ code: "server_error", message: "502", retryable: true })],
    [
      "KIE's record lag",
      new KieError({ code: "record_not_found", message: "recordInfo is null", retryable: true }),
    ],
  ])(
    "a check that meets %s touches the task's in-flight slot: an hour of them drops no slot still generating",
    async (_name, error) => {
      const f = setup({
        row: { status: "generating" },
        task: async () => {
          throw error;
        },
      });
      f.clock.advance(60_000);
      expect(await pollStage.run(stageJob(pollJob({ checks: 3 })), f.deps)).toMatchObject({ kind: "delay" });
      expect(f.touched).toEqual(["b/r1"]);
      expect(f.released).toEqual([]);
    },
  );

  it.each([
    [
      "webhook mode's safety net of a 6 h KIE_MAX_WAIT",
      { callbackUrl: "https://hooks.example/kie", maxWaitMs: 6 * 3_600_000 },
    ],
    [
      "polling mode's ladder of a 10 min KIE_POLL_INTERVAL",
      { pollFirstMs: 10 * 60_000, maxWaitMs: 24 * 3_600_000 },
    ],
  ])(
    "%s checks a generating task at least every 20 minutes (its slot goes stale after an hour untouched)",
    async (_name, settings) => {
      for (const checks of [0, 1, 2, 5, 20]) {
        const f = setup({ row: { status: "generating" } });
        f.clock.advance(checks * 60_000);
        const result = await pollStage.run(stageJob(pollJob({ checks })), {
          ...f.deps,
          settings: { ...f.deps.settings, ...settings },
        });
        expect(result.kind === "delay" && result.ms).toBeLessThanOrEqual(20 * 60_000);
        expect(result.kind === "delay" && result.ms).toBeGreaterThan(0);
      }
      expect(firstPollDelay({ pollFirstMs: 5_000, ...settings })).toBeLessThanOrEqual(20 * 60_000);
    },
  );

  it("a fleet condition (429 on the status call) past the deadline waits: it says nothing of the task", async () => {
    const f = setup({
      task: async () => {
        throw new KieError({
          code: "rate_limited",
          message: "rate limited",
          retryable: true,
          fleetEffect: "rate-limited",
        });
      },
    });
    f.clock.advance(MAX_WAIT_MS + 1);
    expect(await pollStage.run(stageJob(pollJob()), f.deps)).toMatchObject({ kind: "delay" });
    expect(f.ledger.transitions).toEqual([]);
  });
});

describe("poll stage: the record-lag grace is measured on one clock and a task unknown past it is uncertain", () => {
  const notFound = () =>
    setup({
      task: async () => {
        throw new KieError({ code: "record_not_found", message: "recordInfo is null", retryable: true });
      },
    });

  it("a submitter's clock 5 min behind the poller's does not cut the grace short", async () => {
    const f = notFound();
    // submittedAt (T0) was written by the submitting machine; this poller's clock reads 5 min later.
    f.clock.advance(5 * 60_000);
    const result = await pollStage.run(stageJob(pollJob()), f.deps);
    expect(result).toEqual({
      kind: "delay",
      ms: 8_000,
      data: pollJob({ checks: 1, notFound: { since: T0 + 5 * 60_000, waitedMs: 8_000 } }),
    });
    expect(f.ledger.transitions).toEqual([]);
    expect(f.submits).toEqual([]);
  });

  it("a second poller whose clock runs ahead does not end the grace before the job has waited it", async () => {
    const f = notFound();
    // The first poller saw "not found" at T0 on its clock; this one reads T0 + 2 min.
    f.clock.advance(2 * 60_000);
    const job = pollJob({ checks: 1, notFound: { since: T0, waitedMs: 5_000 } });
    expect(await pollStage.run(stageJob(job), f.deps)).toMatchObject({
      kind: "delay",
      data: { notFound: { since: T0, waitedMs: 5_000 + nextDelay(2, 2 * 60_000) } },
    });
    expect(f.ledger.transitions).toEqual([]);
  });

  it("unknown past the grace: counted uncertain with its reservation kept, then resubmitted", async () => {
    const f = notFound();
    f.clock.advance(61_000);
    const job = pollJob({ checks: 8, notFound: { since: T0, waitedMs: 60_000 } });
    expect(await pollStage.run(stageJob(job), f.deps)).toEqual({ kind: "done" });
    // The row's price (acceleration "none": 8): KIE may still run the task and charge it.
    expect(f.keptUncertain).toEqual([8]);
    expect(f.ledger.current()).toMatchObject({ status: "queued", resubmits: 1 });
    expect(f.ledger.current()?.error).toContain("unknown_task");
    expect(f.submits).toEqual([{ batch: "b", rowId: "r1", resubmit: 1 }]);
  });

  it("a task found again drops the not-found mark", async () => {
    const f = setup();
    const job = pollJob({ checks: 2, notFound: { since: T0, waitedMs: 5_000 } });
    const result = await pollStage.run(stageJob(job), f.deps);
    expect(result).toMatchObject({ kind: "delay", data: pollJob({ checks: 3 }) });
    expect(result.kind === "delay" && "notFound" in result.data).toBe(false);
  });
});
