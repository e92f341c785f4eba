import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { KieApi } from "../../src/kie/types.js";
import type { SubmitJob } from "../../src/worker/jobs.js";
import type { StageDeps } from "../../src/worker/ports.js";
import { JobLostError, type StageJob } from "../../src/worker/stage.js";
import { runSubmit } from "../../src/worker/submit.js";
import { openFleet } from "../helpers/open-fleet.js";
import { type Pipeline, startPipeline } from "../helpers/pipeline.js";

let pipeline: Pipeline | undefined;
afterEach(async () => {
  await pipeline?.close();
  pipeline = undefined;
});

describe("submit after a worker stopped mid-create or lost its job", () => {
  async function setup() {
    pipeline = await startPipeline();
    const p = pipeline;
    await p.ledger.addRows("b", [
      { id: "r1", line: 2, prompt: "a fox", params: {}, metadata: {}, estimatedCredits: 8 },
    ]);
    const creates: string[] = [];
    const kie = {
      submit: async (request: { prompt: string }) => {
        creates.push(request.prompt);
        return `task-${creates.length}`;
      },
    } as unknown as KieApi;
    const deps = {
      kie,
      ledger: p.ledger,
      fleet: openFleet(),
      queues: p.queues,
      clock: systemClock,
      settings: { pollFirstMs: 1_000 },
    } as unknown as StageDeps;
    /** What the job's data was saved as, in order. */
    const saved: SubmitJob[] = [];
    const job = (options: { owned?: boolean; data?: Partial<SubmitJob> } = {}): StageJob<SubmitJob> => ({
      key: "b/r1",
      data: { batch: "b", rowId: "r1", resubmit: 0, ...options.data },
      signal: new AbortController().signal,
      attemptsMade: 0,
      attempts: 8,
      log: silentLogger(),
      stillOwned: async () => options.owned ?? true,
      saveData: async (data) => {
        if (!(options.owned ?? true)) return false;
        saved.push(data);
        return true;
      },
    });
    return { p, creates, deps, job, saved };
  }

  it("creates nothing once the job went to another worker, and leaves the row to that one", async () => {
    const { p, creates, deps, job } = await setup();
    await expect(runSubmit(job({ owned: false }), deps)).rejects.toBeInstanceOf(JobLostError);
    expect(creates).toEqual([]);
    expect(await p.ledger.getRow("b", "r1")).toMatchObject({ status: "queued", taskIds: [] });

    // The worker that holds the job now submits it, once.
    await runSubmit(job(), deps);
    expect(creates).toEqual(["a fox"]);
    expect(await p.ledger.getRow("b", "r1")).toMatchObject({ status: "submitted", taskIds: ["task-1"] });
  });

  it("marks the job while its create is on the wire, and a run after a dead one counts the row uncertain", async () => {
    const { p, creates, deps, job, saved } = await setup();
    await runSubmit(job(), deps);
    // Marked before the request went out; a completed job needs no unmarking.
    expect(saved).toEqual([{ batch: "b", rowId: "r1", resubmit: 0, creating: expect.any(Number) }]);
    expect(creates).toHaveLength(1);

    // The job of a worker that died with its create on the wire comes back with the mark.
    await p.ledger.addRows("b", [
      { id: "r2", line: 3, prompt: "a hare", params: {}, metadata: {}, estimatedCredits: 8 },
    ]);
    saved.length = 0;
    await runSubmit({ ...job({ data: { rowId: "r2", creating: Date.now() - 5_000 } }), key: "b/r2" }, deps);
    expect(await p.ledger.getRow("b", "r2")).toMatchObject({ status: "submitted", uncertain: 1 });
    expect((await p.ledger.getBatch("b"))?.uncertain).toBe(1);
    expect(saved[0]).toEqual({ batch: "b", rowId: "r2", resubmit: 0 });
    expect(creates).toEqual(["a fox", "a hare"]);
  });
});
