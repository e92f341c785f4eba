/**
 * The submit stage's key choice: whichever key has a create slot free soonest and is not paused
 * or backing off; a 433 on one key pauses that key only; the task's key (its short hash) is
 * recorded with the task id; the gate read again after the slot is the chosen key's.
 */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { type KeyLane, keyRing } from "../../src/fleet/key-ring.js";
import type { FleetPort } from "../../src/fleet/port.js";
import { KieError } from "../../src/kie/errors.js";
import type { KieApi } from "../../src/kie/types.js";
import type { SubmitJob } from "../../src/worker/jobs.js";
import { chooseKey } from "../../src/worker/key-choice.js";
import { type SubmitDeps, submitStage } from "../../src/worker/submit.js";
import { openFleet } from "../helpers/open-fleet.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob } from "../helpers/stage-fakes.js";

const PAUSED = { kind: "usage-cap" as const, reason: "cap", since: 1 };

/** A key whose create window frees in `retryInMs` (0: free now), recording what is asked of it. */
function lane(id: string, fleet: Partial<FleetPort> = {}, submit?: () => Promise<string>) {
  const calls: string[] = [];
  const kie = {
    submit: async () => {
      calls.push("submit");
      return (submit ?? (async () => `task-of-${id}`))();
    },
    getTask: async () => {
      throw new Error("not here");
    },
    refreshDownloadUrl: async () => "",
    getCredits: async () => 0,
  } as KieApi;
  const base = openFleet({
    tryAcquireInFlight: async () => {
      calls.push("in-flight");
      return true;
    },
    releaseInFlight: async () => {
      calls.push("release");
    },
    tryCreateSlot: async () => {
      calls.push("slot");
      return { retryInMs: 0 };
    },
    ...fleet,
  });
  return { lane: { id, account: id, kie, fleet: base } satisfies KeyLane, calls };
}

function choiceDeps(lanes: KeyLane[]) {
  const clock = fakeClock();
  return { deps: { kie: lanes[0]!.kie, fleet: lanes[0]!.fleet, keys: keyRing(lanes), clock }, clock };
}

describe("chooseKey", () => {
  it("takes a key with a free slot now, giving back the in-flight slot of one whose window is full", async () => {
    const a = lane("aaaa", { tryCreateSlot: async () => ({ retryInMs: 700 }) });
    const b = lane("bbbb");
    const { deps } = choiceDeps([a.lane, b.lane]);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const chosen = await chooseKey(deps, "b/r1", new AbortController().signal, silentLogger());
      seen.add(chosen!.id!);
    }
    expect([...seen]).toEqual(["bbbb"]);
    // Whenever the full key was tried, its in-flight slot went back at once.
    expect(a.calls.filter((c) => c === "in-flight").length).toBe(
      a.calls.filter((c) => c === "release").length,
    );
  });

  it("takes a key's slot with the job's signal, so the create's lateness is told to the same key (createLeaving)", async () => {
    const signals: (AbortSignal | undefined)[] = [];
    const a = lane("aaaa", {
      tryCreateSlot: async (signal) => {
        signals.push(signal);
        return { retryInMs: 0 };
      },
    });
    const b = lane("bbbb", {
      tryCreateSlot: async (signal) => {
        signals.push(signal);
        return { retryInMs: 0 };
      },
    });
    const { deps } = choiceDeps([a.lane, b.lane]);
    const signal = new AbortController().signal;
    await chooseKey(deps, "b/r1", signal, silentLogger());
    expect(signals).toEqual([signal]);
  });

  it("passes over a paused key and one backing off: the others go on", async () => {
    const paused = lane("aaaa", { readGate: async () => ({ paused: PAUSED, backoffMs: 0 }) });
    const backingOff = lane("bbbb", { readGate: async () => ({ paused: null, backoffMs: 5_000 }) });
    const open = lane("cccc");
    const { deps } = choiceDeps([paused.lane, backingOff.lane, open.lane]);
    for (let i = 0; i < 3; i++) {
      const chosen = await chooseKey(deps, "b/r1", new AbortController().signal, silentLogger());
      expect(chosen?.id).toBe("cccc");
    }
    expect(paused.calls).toEqual([]);
    expect(backingOff.calls).toEqual([]);
  });

  it("with every window full, waits for the soonest slot, then takes it", async () => {
    let bFree = 300;
    let aAsked = 0;
    const a = lane("aaaa", {
      tryCreateSlot: async () => {
        aAsked++;
        return { retryInMs: 900 };
      },
    });
    const b = lane("bbbb", {
      tryCreateSlot: async () => {
        const wait = bFree;
        bFree = 0;
        return { retryInMs: wait };
      },
    });
    const { deps, clock } = choiceDeps([a.lane, b.lane]);
    const chosen = await chooseKey(deps, "b/r1", new AbortController().signal, silentLogger());
    expect(chosen?.id).toBe("bbbb");
    expect(clock.sleeps).toEqual([300]);
    // a's window frees at 900 ms: no one asked it again before then.
    expect(aAsked).toBe(1);
  });

  it("a won usage-cap probe whose key's in-flight cap is full waits for a slot, not a whole probe period", async () => {
    let inFlightTries = 0;
    const capped = lane("aaaa", {
      readGate: async () => ({ paused: { ...PAUSED, nextProbeAt: 1 }, backoffMs: 0 }),
      claimProbe: async () => true,
      tryAcquireInFlight: async () => ++inFlightTries > 2,
    });
    const full = lane("bbbb", { tryAcquireInFlight: async () => false });
    const { deps, clock } = choiceDeps([capped.lane, full.lane]);
    const chosen = await chooseKey(deps, "b/r1", new AbortController().signal, silentLogger());
    expect(chosen).toMatchObject({ id: "aaaa", passed: "probe" });
    expect(inFlightTries).toBe(3);
    expect(clock.sleeps).toEqual([2_000, 2_000]);
  });

  it("says so when the in-flight cap holds every key (the caller waits)", async () => {
    const a = lane("aaaa", { tryAcquireInFlight: async () => false });
    const b = lane("bbbb", { tryAcquireInFlight: async () => false });
    const { deps } = choiceDeps([a.lane, b.lane]);
    expect(await chooseKey(deps, "b/r1", new AbortController().signal, silentLogger())).toBeUndefined();
  });
});

describe("submit with several keys", () => {
  const job = (data: SubmitJob = { batch: "b", rowId: "r1", resubmit: 0 }) => stageJob(data);

  function submitDeps(lanes: KeyLane[], params?: Record<string, unknown>) {
    const ledger = oneRowLedger(rowRecord(params ? { params } : {}));
    const clock = fakeClock();
    const deps: SubmitDeps = {
      kie: lanes[0]!.kie,
      fleet: lanes[0]!.fleet,
      keys: keyRing(lanes),
      ledger: {
        batchMarks: async () => ({ cancelled: false, purging: false }),
        getRow: ledger.getRow,
        getRowState: ledger.getRowState,
        transition: ledger.transition,
        reserveBudget: async () => "no-budget",
        releaseReservation: async () => 0,
        keepUncertain: async () => 0,
      },
      queues: { addPoll: async () => {} },
      clock,
      settings: { pollFirstMs: 20_000 },
    };
    return { deps, ledger };
  }

  /**
   * Runs a submit over `lanes` until it would sleep (every key held: paused or capped), where the
   * sleep aborts it; the run must end with that abort. The ledger it wrote to.
   */
  async function submitUntilItWaits(lanes: KeyLane[]) {
    const { deps, ledger } = submitDeps(lanes);
    const controller = new AbortController();
    deps.clock = { ...deps.clock, sleep: async () => controller.abort(new Error("stop")) };
    await expect(
      submitStage.run(
        stageJob({ batch: "b", rowId: "r1", resubmit: 0 }, { signal: controller.signal }),
        deps,
      ),
    ).rejects.toThrow("stop");
    return ledger;
  }

  it("a 433 on one key pauses that key only; the create goes out with another, whose short hash is recorded with the task", async () => {
    const pauses: string[] = [];
    let aPaused = false;
    const a = lane(
      "aaaa",
      {
        readGate: async () => ({ paused: aPaused ? PAUSED : null, backoffMs: 0 }),
        pause: async (kind) => {
          pauses.push(`aaaa:${kind}`);
          aPaused = true;
          return true;
        },
      },
      async () => {
        throw new KieError({
          code: "usage_cap",
          message: "Usage limit of this key exceeded",
          retryable: false,
          fleetEffect: "usage-cap",
        });
      },
    );
    // b's window is full the first time it is asked: the first create goes out with a.
    let bAsked = 0;
    const b = lane("bbbb", {
      tryCreateSlot: async () => ({ retryInMs: bAsked++ === 0 ? 500 : 0 }),
      pause: async (kind) => {
        pauses.push(`bbbb:${kind}`);
        return true;
      },
    });
    const { deps, ledger } = submitDeps([a.lane, b.lane]);
    expect(await submitStage.run(job(), deps)).toEqual({ kind: "done" });
    expect(a.calls).toContain("submit");
    expect(pauses).toEqual(["aaaa:usage-cap"]);
    const recorded = ledger.transitions.filter((t) => t.addTaskId !== undefined);
    expect(recorded).toEqual([expect.objectContaining({ addTaskId: "task-of-bbbb", taskKey: "bbbb" })]);
  });

  it("with several keys an input image is uploaded before the choice takes its slot, never between a slot and its create", async () => {
    const events: string[] = [];
    const a = lane("aaaa", {
      tryCreateSlot: async () => {
        events.push("slot");
        return { retryInMs: 0 };
      },
    });
    const b = lane("bbbb", {
      tryCreateSlot: async () => {
        events.push("slot");
        return { retryInMs: 0 };
      },
    });
    const { deps } = submitDeps([a.lane, b.lane], {
      image_path: "/in/mug.png",
      image_sha256: "ab".repeat(32),
    });
    deps.inputImages = {
      urlFor: async () => {
        events.push("upload");
        return "https://uploads.example/mug.png";
      },
    };
    deps.kie = a.lane.kie;
    expect(await submitStage.run(job(), deps)).toEqual({ kind: "done" });
    expect(events).toEqual(["upload", "slot"]);
  });

  it("with one key, the task records its key too: a worker with another first key must not poll it with that one", async () => {
    const only = lane("aaaa");
    const { deps, ledger } = submitDeps([only.lane]);
    expect(await submitStage.run(job(), deps)).toEqual({ kind: "done" });
    const recorded = ledger.transitions.filter((t) => t.addTaskId !== undefined);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toHaveProperty("taskKey", "aaaa");
  });

  it("a pause of the chosen key set while it waited for its slot stops the create: the gate is read again for that key", async () => {
    let paused = false;
    const a = lane("aaaa", {
      tryCreateSlot: async () => {
        paused = true; // set by another worker while this one took the slot
        return { retryInMs: 0 };
      },
      readGate: async () => ({ paused: paused ? PAUSED : null, backoffMs: 0 }),
    });
    const b = lane("bbbb", { tryAcquireInFlight: async () => false });
    // After the refused create the job goes back to the gate: a paused a and a capped b hold it.
    const ledger = await submitUntilItWaits([a.lane, b.lane]);
    expect(a.calls).not.toContain("submit");
    expect(ledger.transitions).toEqual([]);
  });

  it("the gate read with the chosen key's slot (one script) stops the create when paused, with no second read", async () => {
    let reads = 0;
    let paused = false;
    const a = lane("aaaa", {
      tryCreateSlot: async () => {
        paused = true; // set by another worker just before the slot's script ran
        return { retryInMs: 0, gate: { paused: PAUSED, backoffMs: 0 } };
      },
      readGate: async () => {
        reads++;
        return { paused: paused ? PAUSED : null, backoffMs: 0 };
      },
    });
    const b = lane("bbbb", { tryAcquireInFlight: async () => false });
    const ledger = await submitUntilItWaits([a.lane, b.lane]);
    expect(a.calls).not.toContain("submit");
    expect(ledger.transitions).toEqual([]);
    // a's gate read by the key choice, then (after the refused create) by the next choice, which
    // finds the pause and waits: no read between the slot and the create.
    expect(reads).toBe(2);
  });
});
