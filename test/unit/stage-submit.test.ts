import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { keyRing } from "../../src/fleet/key-ring.js";
import type { FleetPort } from "../../src/fleet/port.js";
import { KieError } from "../../src/kie/errors.js";
import type { KieApi, SubmitRequest } from "../../src/kie/types.js";
import type { ReserveOutcome, RowRecord } from "../../src/ledger/types.js";
import type { PollJob, SubmitJob } from "../../src/worker/jobs.js";
import { JobLostError } from "../../src/worker/stage.js";
import { IN_FLIGHT_RECHECK_MS, type SubmitDeps, submitStage } from "../../src/worker/submit.js";
import { openFleet } from "../helpers/open-fleet.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob, T0 } from "../helpers/stage-fakes.js";

// Jitter factor 1: the first poll comes exactly `pollFirstMs` after the submit.
beforeEach(() => {
  vi.spyOn(Math, "random").mockReturnValue(0.5);
});
afterEach(() => {
  vi.restoreAllMocks();
});

const submitJob = (overrides: Partial<SubmitJob> = {}): SubmitJob => ({
  batch: "b",
  rowId: "r1",
  resubmit: 0,
  ...overrides,
});

const never = async (): Promise<never> => {
  throw new Error("not expected in this test");
};

function setup(
  options: {
    row?: Partial<RowRecord> | null;
    submit?: (request: SubmitRequest) => Promise<string>;
    reserve?: ReserveOutcome;
    fleet?: Partial<FleetPort>;
  } = {},
) {
  const ledger = oneRowLedger(options.row === null ? undefined : rowRecord(options.row));
  const clock = fakeClock();
  const creates: SubmitRequest[] = [];
  const polls: { data: PollJob; delayMs: number }[] = [];
  const released: string[] = [];
  const kie: KieApi = {
    submit: async (request) => {
      creates.push(request);
      return (options.submit ?? (async () => `t-${creates.length}`))(request);
    },
    getTask: never,
    refreshDownloadUrl: never,
    getCredits: never,
  };
  const deps: SubmitDeps = {
    kie,
    ledger: {
      batchMarks: async () => ({ cancelled: false, purging: false }),
      getRow: ledger.getRow,
      getRowState: ledger.getRowState,
      transition: ledger.transition,
      reserveBudget: async () => options.reserve ?? "no-budget",
      releaseReservation: async (_batch, rowId) => {
        released.push(rowId);
        return 8;
      },
      keepUncertain: async (batch, rowId) => {
        await ledger.transition(batch, rowId, { incr: { uncertain: 1 } });
        return 8;
      },
    },
    fleet: openFleet(options.fleet),
    queues: {
      addPoll: async (data, delayMs) => {
        polls.push({ data, delayMs });
      },
    },
    clock,
    settings: { pollFirstMs: 5_000 },
  };
  return { deps, ledger, clock, creates, polls, released };
}

describe("submit stage", () => {
  it("owns the queued rows", () => {
    expect(submitStage.name).toBe("submit");
    expect(submitStage.owns).toEqual(["queued"]);
  });

  it("creates the task once, records it, and adds the first poll", async () => {
    const f = setup({ row: { params: { acceleration_level: "none", seed: 7 } } });
    f.clock.advance(1_000);
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([{ acceleration_level: "none", seed: 7, prompt: "a fox in the snow" }]);
    expect(f.ledger.current()).toMatchObject({
      status: "submitted",
      taskIds: ["t-1"],
      submittedAt: T0 + 1_000,
    });
    expect(f.polls).toEqual([
      {
        data: { batch: "b", rowId: "r1", resubmit: 0, taskId: "t-1", submittedAt: T0 + 1_000, checks: 0 },
        delayMs: 5_000,
      },
    ]);
  });

  it("tells the fleet its create is leaving right before it goes out, with the job's signal (a late slot moves)", async () => {
    const events: string[] = [];
    const signals: AbortSignal[] = [];
    const f = setup({
      fleet: {
        createSlot: async (signal) => {
          signals.push(signal);
          events.push("slot");
        },
        createLeaving: async (signal) => {
          signals.push(signal);
          events.push("leaving");
          return true;
        },
      },
      submit: async () => {
        events.push("create");
        return "t-1";
      },
    });
    await submitStage.run(stageJob(submitJob()), f.deps);
    expect(events).toEqual(["slot", "leaving", "create"]);
    expect(signals[0]).toBe(signals[1]);
  });

  it("a create whose rate window filled while it waited (an outage) is not sent: its slot goes back and it waits for another", async () => {
    const events: string[] = [];
    let leavings = 0;
    const f = setup({
      fleet: {
        createSlot: async () => void events.push("slot"),
        createLeaving: async () => {
          events.push("leaving");
          return ++leavings > 1;
        },
        releaseInFlight: async () => void events.push("release"),
      },
      submit: async () => {
        events.push("create");
        return "t-1";
      },
    });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(events).toEqual(["slot", "leaving", "release", "slot", "leaving", "create"]);
    expect(f.creates).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("submitted");
  });

  it("a Redis error as the create leaves sends nothing: the in-flight slot goes back and the job is tried again", async () => {
    const released: string[] = [];
    const f = setup({
      fleet: {
        createLeaving: async () => {
          throw new Error("Redis away");
        },
        releaseInFlight: async (jobKey) => void released.push(jobKey),
      },
    });
    await expect(submitStage.run(stageJob(submitJob()), f.deps)).rejects.toThrow("Redis away");
    expect(f.creates).toEqual([]);
    expect(released).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("queued");
  });

  it("a record whose reply was lost and was sent again finds its own task: it adds the poll, counts nothing uncertain", async () => {
    const f = setup();
    // The transition ran on the server, its reply was lost, and the resent one finds the row moved.
    const transition = f.deps.ledger.transition;
    f.deps.ledger.transition = async (batch, rowId, input) => {
      const first = await transition(batch, rowId, input);
      return first.ok ? { ...first, ok: false } : first;
    };
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toHaveLength(1);
    expect(f.ledger.current()).toMatchObject({ status: "submitted", taskIds: ["t-1"], uncertain: 0 });
    expect(f.polls.map((p) => p.data.taskId)).toEqual(["t-1"]);
  });

  it("a recorded taskId is never submitted again: a re-run only makes sure the poll job exists", async () => {
    const f = setup({
      row: { status: "submitted", taskId: "t-0", taskIds: ["t-0"], submittedAt: T0 - 9_000 },
    });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([]);
    expect(f.ledger.transitions).toEqual([]);
    expect(f.polls.map((p) => p.data)).toEqual([
      { batch: "b", rowId: "r1", resubmit: 0, taskId: "t-0", submittedAt: T0 - 9_000, checks: 0 },
    ]);
  });

  it("a resubmit lineage creates its own task beside the recorded one", async () => {
    const f = setup({ row: { taskId: "t-0", taskIds: ["t-0"], resubmits: 1 } });
    await submitStage.run(stageJob(submitJob({ resubmit: 1 })), f.deps);
    expect(f.creates).toHaveLength(1);
    expect(f.ledger.current()).toMatchObject({ status: "submitted", taskIds: ["t-0", "t-1"] });
    expect(f.polls[0]?.data).toMatchObject({ resubmit: 1, taskId: "t-1" });
  });

  it("the callback URL names the job, so a callback finds its poll job", async () => {
    const f = setup();
    const deps = { ...f.deps, settings: { ...f.deps.settings, callbackUrl: "https://hooks.example/kie" } };
    await submitStage.run(stageJob(submitJob({ resubmit: 0 })), deps);
    expect(f.creates[0]?.callBackUrl).toBe("https://hooks.example/kie/b/r1");
  });

  it("a row over its batch's budget waits (parked: its job ends, no recheck) and creates nothing", async () => {
    const f = setup({ reserve: "over-budget" });
    const result = await submitStage.run(stageJob(submitJob()), f.deps);
    expect(result).toEqual({ kind: "parked" });
    expect(f.creates).toEqual([]);
  });

  it("a row of a batch being purged is not created: its job ends, nothing taken", async () => {
    const f = setup({ reserve: "purging" });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([]);
    expect(f.polls).toEqual([]);
  });

  it("a row of a batch `cancel` marked, its walk not at the row yet (or cut short), is cancelled, not created", async () => {
    const f = setup({ reserve: "cancelled" });
    let slots = 0;
    f.deps.fleet = openFleet({
      createSlot: async () => {
        slots++;
      },
      tryCreateSlot: async () => {
        slots++;
        return { retryInMs: 0 };
      },
    });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([]);
    expect(slots).toBe(0);
    expect(f.ledger.current()).toMatchObject({ status: "cancelled" });
    expect(f.released).toEqual(["r1"]);
  });

  it.each([
    ["cancelled", { cancelled: true, purging: false }, "cancelled", ["r1"]],
    // The purge deletes the row and its reservation: a release would wake the batch's parked rows.
    ["being purged", { cancelled: false, purging: true }, "queued", []],
  ])(
    "a batch %s while its create waited for the rate slot: not sent, the slot given back",
    async (_name, marks, status, released) => {
      const freed: string[] = [];
      const f = setup({
        fleet: {
          releaseInFlight: async (key) => {
            freed.push(key);
          },
        },
      });
      f.deps.ledger.batchMarks = async () => marks;
      expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
      expect(f.creates).toEqual([]);
      expect(f.ledger.current()).toMatchObject({ status });
      expect(f.released).toEqual(released);
      // The in-flight slot it took goes back at once (not an hour later, as stale).
      expect(freed).toEqual(["b/r1"]);
      // Unmarked batch: sent.
      const g = setup();
      g.deps.ledger.batchMarks = async () => ({ cancelled: false, purging: false });
      await submitStage.run(stageJob(submitJob()), g.deps);
      expect(g.creates).toHaveLength(1);
    },
  );

  it.each([
    ["cancelled", { status: "cancelled" as const }],
    ["purged", null],
  ])("a %s row is not paid for", async (_name, row) => {
    const f = setup({ row });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([]);
    expect(f.polls).toEqual([]);
  });

  it("with KIE_MAX_IN_FLIGHT reached it looks for room on the clock, then submits", async () => {
    let refusals = 2;
    const f = setup({ fleet: { tryAcquireInFlight: async () => refusals-- <= 0 } });
    await submitStage.run(stageJob(submitJob()), f.deps);
    expect(f.clock.sleeps).toEqual([IN_FLIGHT_RECHECK_MS, IN_FLIGHT_RECHECK_MS]);
    expect(f.creates).toHaveLength(1);
  });

  it("waits out the fleet's 429 backoff on the clock before it creates", async () => {
    let backoffMs = 4_000;
    const f = setup({
      fleet: {
        readGate: async () => {
          const gate = { paused: null, backoffMs };
          backoffMs = 0;
          return gate;
        },
      },
    });
    await submitStage.run(stageJob(submitJob()), f.deps);
    expect(f.clock.sleeps).toEqual([4_000]);
    expect(f.creates).toHaveLength(1);
  });

  it("a row cancelled while it waited at the gate is not paid for, and its reservation goes back", async () => {
    const f = setup({
      fleet: {
        // The operator cancels while this job waits for a create slot.
        createSlot: async () => {
          await f.ledger.transition("b", "r1", { to: "cancelled" });
        },
      },
    });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.creates).toEqual([]);
    expect(f.released).toEqual(["r1"]);
  });

  it("a manual pause in the gate read with the create slot sends no create: the slot goes back, the row stays queued", async () => {
    const paused = { kind: "manual" as const, reason: "operator", since: T0 };
    const stop = new AbortController();
    const inFlightReleased: string[] = [];
    let reads = 0;
    const f = setup({
      fleet: {
        // Open when the key is chosen; paused from then on (set while the job waited for its slot).
        readGate: async () => {
          if (++reads === 1) return { paused: null, backoffMs: 0 };
          // The job waits at the pause again: stop it there (a shutdown would).
          stop.abort();
          return { paused, backoffMs: 0 };
        },
        // The limiter's script reads the gate with the admission: the pause is there.
        createSlot: async () => ({ paused, backoffMs: 0 }),
        releaseInFlight: async (key) => {
          inFlightReleased.push(key);
        },
      },
    });
    const saved: SubmitJob[] = [];
    const job = stageJob(submitJob(), {
      signal: stop.signal,
      saveData: async (data) => {
        saved.push(data);
        return true;
      },
    });
    await expect(submitStage.run(job, f.deps)).rejects.toMatchObject({ name: "AbortError" });
    expect(f.creates).toEqual([]);
    expect(f.ledger.current()).toMatchObject({ status: "queued", taskIds: [] });
    expect(inFlightReleased).toEqual(["b/r1"]);
    // Marked with the ownership check after the slot, unmarked as soon as the gate read with it
    // said paused: a later run of the job counts nothing uncertain.
    expect(saved).toEqual([submitJob({ creating: T0 }), submitJob()]);
    expect(f.released).toEqual([]);
  });

  it("creates nothing once its job went to another worker", async () => {
    const f = setup();
    const job = stageJob(submitJob(), { stillOwned: async () => false });
    await expect(submitStage.run(job, f.deps)).rejects.toBeInstanceOf(JobLostError);
    expect(f.creates).toEqual([]);
  });

  it("creates nothing when its mark cannot be stored (the job's lock went to another worker), and erases no mark", async () => {
    const f = setup();
    const attempts: SubmitJob[] = [];
    const job = stageJob(submitJob(), {
      // The fenced store refuses every write: another worker holds the job's lock.
      saveData: async (data) => {
        attempts.push(data);
        return false;
      },
    });
    await expect(submitStage.run(job, f.deps)).rejects.toBeInstanceOf(JobLostError);
    expect(f.creates).toEqual([]);
    // One attempt, the mark; no unmarking write after it (the holder's mark is that worker's).
    expect(attempts).toEqual([submitJob({ creating: T0 })]);
    expect(f.ledger.current()).toMatchObject({ status: "queued", taskIds: [] });
  });

  it("a clear the fence refuses (the job went to another worker after the mark) touches neither slot nor reservation", async () => {
    const inFlightReleased: string[] = [];
    const f = setup({
      fleet: {
        // The gate read with the admission says paused: this attempt must clear its mark.
        createSlot: async () => ({
          paused: { kind: "manual" as const, reason: "operator", since: T0 },
          backoffMs: 0,
        }),
        releaseInFlight: async (key) => {
          inFlightReleased.push(key);
        },
      },
    });
    const saved: SubmitJob[] = [];
    const job = stageJob(submitJob(), {
      // The mark is stored; the lock lapses and another worker takes the job before the clear.
      saveData: async (data) => {
        saved.push(data);
        return saved.length === 1;
      },
    });
    await expect(submitStage.run(job, f.deps)).rejects.toBeInstanceOf(JobLostError);
    expect(f.creates).toEqual([]);
    expect(saved).toEqual([submitJob({ creating: T0 }), submitJob()]);
    // The slot is keyed by the job: the worker holding it now has it.
    expect(inFlightReleased).toEqual([]);
    expect(f.released).toEqual([]);
  });

  it("a Redis error beside a stored mark clears it, after the mark's own answer", async () => {
    const events: string[] = [];
    const f = setup();
    let answerMark = (_: boolean) => {};
    // The first read (the job's start) works; the one beside the mark (the row's state) fails.
    f.deps.ledger.getRowState = async () => {
      events.push("row read failed");
      throw new Error("Connection is closed.");
    };
    const job = stageJob(submitJob(), {
      saveData: async (data) => {
        if (data.creating === undefined) {
          events.push("clear");
          return true;
        }
        events.push("mark sent");
        const stored = await new Promise<boolean>((resolve) => {
          answerMark = resolve;
        });
        events.push("mark stored");
        return stored;
      },
    });
    const run = submitStage.run(job, f.deps);
    await vi.waitFor(() => expect(events).toContain("row read failed"));
    answerMark(true);
    await expect(run).rejects.toThrow("Connection is closed.");
    expect(events).toEqual(["mark sent", "row read failed", "mark stored", "clear"]);
    expect(f.creates).toEqual([]);
  });

  it("a Redis error beside a mark the fence refused leaves the slot to the worker that holds the job", async () => {
    const inFlightReleased: string[] = [];
    const saved: SubmitJob[] = [];
    const f = setup({
      fleet: {
        releaseInFlight: async (key) => {
          inFlightReleased.push(key);
        },
      },
    });
    // The first read (the job's start) works; the one beside the mark (the row's state) fails.
    f.deps.ledger.getRowState = async () => {
      throw new Error("Connection is closed.");
    };
    const job = stageJob(submitJob(), {
      saveData: async (data) => {
        saved.push(data);
        return false;
      },
    });
    await expect(submitStage.run(job, f.deps)).rejects.toThrow("Connection is closed.");
    expect(saved).toEqual([submitJob({ creating: T0 })]);
    expect(inFlightReleased).toEqual([]);
    expect(f.creates).toEqual([]);
  });

  it.each([
    ["cancelled", { status: "cancelled" as const }],
    ["failed", { status: "failed" as const }],
    ["gone (purged)", null],
  ])(
    "a job run again on a row %s (its last run died holding an in-flight slot) gives the slot back under every key",
    async (_name, row) => {
      const released: string[] = [];
      const f = setup({ row, fleet: { releaseInFlight: async (key) => void released.push(`own ${key}`) } });
      const lane = (id: string) => ({
        id,
        account: id,
        kie: f.deps.kie,
        fleet: openFleet({ releaseInFlight: async (key) => void released.push(`${id} ${key}`) }),
      });
      f.deps.keys = keyRing([lane("aaaaaaaaaaaaaaaa"), lane("bbbbbbbbbbbbbbbb")]);
      expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
      expect(released.sort()).toEqual(["aaaaaaaaaaaaaaaa b/r1", "bbbbbbbbbbbbbbbb b/r1"]);
      // A ring that reaches every key of the deployment (a worker's): that, once, not each lane.
      const everywhere: string[] = [];
      f.deps.keys = keyRing([lane("aaaaaaaaaaaaaaaa")], {
        releaseInFlightEverywhere: async (key) => void everywhere.push(key),
      });
      released.length = 0;
      expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
      expect(everywhere).toEqual(["b/r1"]);
      expect(released).toEqual([]);
      // One key (no ring): the stage's own fleet.
      const one = setup({ row, fleet: { releaseInFlight: async (key) => void released.push(`own ${key}`) } });
      await submitStage.run(stageJob(submitJob()), one.deps);
      expect(released).toContain("own b/r1");
      expect(f.creates).toEqual([]);
    },
  );

  it("a job run again on a cancelled row whose last run died with a create on the wire keeps the slot (KIE may run that task)", async () => {
    const released: string[] = [];
    const f = setup({
      row: { status: "cancelled" },
      fleet: { releaseInFlight: async (key) => void released.push(key) },
    });
    expect(await submitStage.run(stageJob(submitJob({ creating: T0 - 5_000 })), f.deps)).toEqual({
      kind: "done",
    });
    expect(released).toEqual([]);
  });

  it("a row cancelled while its job waited for the slot: unmarked, slot and reservation given back, nothing created", async () => {
    let cancel = async () => {};
    const f = setup({
      fleet: {
        // The operator's cancel lands while the job waits for its rate slot.
        createSlot: async () => {
          await cancel();
          return { paused: null, backoffMs: 0 };
        },
      },
    });
    cancel = async () => {
      await f.ledger.transition("b", "r1", { from: ["queued"], to: "cancelled" });
    };
    const saved: SubmitJob[] = [];
    const job = stageJob(submitJob(), {
      saveData: async (data) => {
        saved.push(data);
        return true;
      },
    });
    await submitStage.run(job, f.deps);
    expect(f.creates).toEqual([]);
    expect(saved).toEqual([submitJob({ creating: T0 }), submitJob()]);
    expect(f.released).toEqual(["r1"]);
  });

  it("a job that comes back with a create on the wire counts the row uncertain, then submits", async () => {
    const f = setup();
    const saved: SubmitJob[] = [];
    const job = stageJob(submitJob({ creating: T0 - 5_000 }), {
      saveData: async (data) => {
        saved.push(data);
        return true;
      },
    });
    await submitStage.run(job, f.deps);
    expect(f.ledger.current()).toMatchObject({ status: "submitted", uncertain: 1 });
    // Unmarked first, marked again for its own create.
    expect(saved).toEqual([submitJob(), submitJob({ creating: T0 })]);
  });

  it("a row KIE refuses fails with the API's message, its reservation released", async () => {
    const f = setup({
      submit: async () => {
        throw new KieError({ code: "validation", message: "prompt too long", retryable: false });
      },
    });
    expect(await submitStage.run(stageJob(submitJob()), f.deps)).toEqual({ kind: "done" });
    expect(f.ledger.current()).toMatchObject({
      status: "failed",
      error: "KIE refused the row: prompt too long",
    });
    expect(f.released).toEqual(["r1"]);
    expect(f.polls).toEqual([]);
  });
});
