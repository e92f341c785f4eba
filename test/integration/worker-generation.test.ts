/**
 * While a task generates: the "recordInfo is null" lag after a create is waited out, a task KIE
 * never comes to know is a failed generation, and KIE_MAX_IN_FLIGHT caps what generates at once.
 */
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `r-${i + 1}` }));

describe("worker: generation", () => {
  const harnesses = harnessPerTest();

  it("tolerates 'recordInfo is null' for longer than the first status checks", async () => {
    // Records show up 1.5 s after the create; the worker checks every ~300 ms.
    const h = await harnesses.start({ sim: { recordLagMs: 1_500 }, env: { KIE_MAX_RESUBMITS: "0" } });
    await h.worker();
    await h.pipeline.addRows("blag", rows(3));

    const summary = await h.pipeline.waitFinished("blag", 15_000);
    expect(summary).toMatchObject({ total: 3, archived: 3, failed: 0, resubmits: 0 });
    const stats = h.pipeline.sim.stats();
    expect(stats.creates).toBe(3);
    // Each row met the lag at least twice before its record appeared.
    expect(stats.statusCalls).toBeGreaterThanOrEqual(3 * 3);
  });

  it("a task still unknown after the grace counts as a failed generation: resubmitted, then failed", async () => {
    // The simulator never shows these records within the test; the worker's grace is 1 s.
    const h = await harnesses.start({ sim: { recordLagMs: 10 * 60_000 }, env: { KIE_MAX_RESUBMITS: "1" } });
    await h.worker({ settings: { recordLagGraceMs: 1_000 } });
    await h.pipeline.addRows("bgone", [{ id: "ghost" }]);

    const summary = await h.pipeline.waitFinished("bgone", 15_000);
    expect(summary).toMatchObject({ total: 1, failed: 1, archived: 0, resubmits: 1 });
    const row = await h.pipeline.ledger.getRow("bgone", "ghost");
    expect(row?.taskIds).toHaveLength(2);
    expect(row?.error).toMatch(/generation failed \(unknown_task\)/);
    expect(row?.error).toContain(`KIE does not know task ${row?.taskIds[1]}`);
    expect(h.pipeline.sim.stats().creates).toBe(2);
    // Nothing stays reserved for a row that is over.
    expect(summary.creditsReserved).toBe(0);
  });

  it("KIE_MAX_IN_FLIGHT=2: never more than two tasks generate at once, and all six archive", async () => {
    const h = await harnesses.start({
      sim: { latency: { minMs: 600, maxMs: 900 } },
      env: { KIE_MAX_IN_FLIGHT: "2" },
    });
    await h.worker();
    await h.pipeline.addRows("bcap", rows(6));

    const summary = await h.pipeline.waitFinished("bcap", 18_000);
    expect(summary).toMatchObject({ total: 6, archived: 6, failed: 0 });
    const stats = h.pipeline.sim.stats();
    expect(stats.creates).toBe(6);
    expect(stats.maxInFlight).toBe(2); // the cap was reached, and held
    expect(await h.fleet().inFlight.count()).toBe(0); // every slot was given back
  });
});
