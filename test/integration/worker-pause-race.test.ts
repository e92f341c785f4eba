/**
 * Invariant 4: a pause stops creates within one request of being set, across the fleet. Jobs that
 * passed the gate and then waited for a slot of the rate window read the gate again after the
 * slot, right before the request; before, they all sent their create into the paused key.
 */
import { describe, expect, it } from "vitest";
import { accountId, accountKey } from "../../src/fleet/index.js";
import type { SubmitJob } from "../../src/worker/jobs.js";
import { runSubmit, type SubmitDeps } from "../../src/worker/submit.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { openFleet } from "../helpers/open-fleet.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob } from "../helpers/stage-fakes.js";
import { submitOnlyKie } from "../helpers/submit-only-kie.js";
import { until } from "../helpers/worker-harness.js";

/** A clock whose sleeps last a tick, so a job held at the gate lets the test run meanwhile. */
const yieldingClock = {
  now: () => fakeClock().now(),
  sleep: (_ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(resolve, 1);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    }),
};

const job = (): SubmitJob => ({ batch: "b", rowId: "r1", resubmit: 0 });

/** One queued row; a fleet whose gate is open until `pauseAt` closes it. */
function setup(pauseWhile: "createSlot" | "none") {
  const ledger = oneRowLedger(rowRecord());
  let paused = false;
  const creates: string[] = [];
  const released: string[] = [];
  const kie = submitOnlyKie(async () => {
    creates.push("create");
    return "t-1";
  });
  const fleet = openFleet({
    readGate: async () => ({
      paused: paused ? { kind: "bad-key", reason: "401", since: 0 } : null,
      backoffMs: 0,
    }),
    // Another worker meets a 401 while this job waits for its slot of the rate window.
    createSlot: async () => {
      if (pauseWhile === "createSlot") paused = true;
    },
    releaseInFlight: async (key) => {
      released.push(key);
    },
  });
  const deps: SubmitDeps = {
    kie,
    ledger: {
      batchMarks: async () => ({ cancelled: false, purging: false }),
      getRow: ledger.getRow,
      getRowState: ledger.getRowState,
      transition: ledger.transition,
      reserveBudget: async () => "no-budget",
      releaseReservation: async () => 0,
      keepUncertain: async () => 0,
    },
    fleet,
    queues: { addPoll: async () => {} },
    clock: yieldingClock,
    settings: { pollFirstMs: 1_000 },
  };
  return { deps, creates, released };
}

describe("submit: a pause set while a create waits for its rate slot", () => {
  it("stops that create: the gate is read again after the slot, and the in-flight slot goes back", async () => {
    const f = setup("createSlot");
    const controller = new AbortController();
    const run = runSubmit(stageJob(job(), { signal: controller.signal }), f.deps);
    // Back at the gate, the job waits for the pause to end: shut it down there.
    await until("the job to give its in-flight slot back", () => f.released.length > 0);
    controller.abort(new Error("shutdown"));
    await expect(run).rejects.toThrow("shutdown");
    expect(f.creates).toEqual([]);
    expect(f.released).toEqual(["b/r1"]);
  });

  it("an in-flight slot taken just before an abort is released", async () => {
    const f = setup("none");
    const controller = new AbortController();
    f.deps.fleet.createSlot = async (signal) => {
      controller.abort(new Error("shutdown"));
      signal.throwIfAborted();
    };
    await expect(runSubmit(stageJob(job(), { signal: controller.signal }), f.deps)).rejects.toThrow(
      "shutdown",
    );
    expect(f.creates).toEqual([]);
    expect(f.released).toEqual(["b/r1"]);
  });
});

describe("worker: two workers and a 401 pause", () => {
  const harnesses = harnessPerTest();

  it("no create reaches KIE after the pause is visible", async () => {
    // One create a second: the other submit jobs pass the gate and queue up for rate slots.
    const h = await harnesses.start({ env: { KIE_RATE_LIMIT: "1/1s" } });
    const { sim, redis } = h.pipeline;
    sim.injectFaults("submit", { kind: "code", code: 401 });
    await h.pipeline.addRows(
      "race",
      Array.from({ length: 8 }, (_, i) => ({ id: `p-${i + 1}` })),
    );
    await h.worker();
    await h.worker();

    const pauseKey = accountKey(accountId(h.pipeline.apiKey), "pause");
    const since = await until(
      "the 401 pause",
      async () => Number((await redis.hget(pauseKey, "since")) ?? 0) || false,
    );
    const createsAtPause = sim.stats().creates;
    // Watch the rate window: jobs that were waiting take their slots after the pause. Each of
    // those would have sent its create before the fix.
    const windowKey = accountKey(accountId(h.pipeline.apiKey), "rate:create");
    const afterPause = new Set<string>();
    await until(
      "three rate slots taken after the pause",
      async () => {
        const entries = await redis.zrange(windowKey, 0, -1, "WITHSCORES");
        for (let i = 0; i < entries.length; i += 2) {
          if (Number(entries[i + 1]) / 1000 > since + 1) afterPause.add(entries[i]!);
        }
        return afterPause.size >= 3;
      },
      { timeoutMs: 20_000 },
    );
    expect(sim.stats().creates).toBe(createsAtPause);
    expect(sim.stats().creates).toBeLessThanOrEqual(1);
  }, 40_000);
});
