/**
 * 402, 433 and 401 pause submissions fleet-wide: the pause says why (status shows it), no row
 * fails for it, and the two kinds that can end by themselves do, through their probe.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

const rows = (n: number, prefix = "r") => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}` }));

describe("worker: fleet pauses on 402, 433 and 401", () => {
  const harnesses = harnessPerTest();

  it("402: pauses with out-of-credits, fails nothing, and resumes by itself when credits return", async () => {
    const h = await harnesses.start({ sim: { credits: 16 } }); // two images at 8 credits
    const { sim, ledger } = h.pipeline;
    await h.worker({ settings: { creditsProbeMs: 300 } });
    await h.pipeline.addRows("b402", rows(5));

    const harness = h;
    const pause = await until(
      "an out-of-credits pause",
      async () => (await harness.fleet().pause.get()) ?? false,
    );
    expect(pause).toMatchObject({ kind: "out-of-credits" });
    expect(pause.reason).toMatch(/credits insufficient/i);
    const paid = await until("the two rows paid for to be archived", async () => {
      const batch = await ledger.getBatch("b402");
      return batch?.archived === 2 ? batch : false;
    });
    expect(paid).toMatchObject({ queued: 3, failed: 0 });

    // A balance probe ran (the next one is scheduled later) and found nothing: still paused.
    const probed = await until("a balance probe", async () => {
      const now = await harness.fleet().pause.get();
      return now && (now.nextProbeAt ?? 0) > (pause.nextProbeAt ?? 0) ? now : false;
    });
    expect(probed.kind).toBe("out-of-credits");
    expect(sim.stats().creates).toBe(2);
    expect(await ledger.getBatch("b402")).toMatchObject({ queued: 3, failed: 0 });

    sim.setCredits(1_000);
    const summary = await h.pipeline.waitFinished("b402", 15_000);
    expect(summary).toMatchObject({ total: 5, archived: 5, failed: 0 });
    expect(sim.stats().creates).toBe(5);
    expect(await h.fleet().pause.get()).toBeNull();
  });

  it("433: pauses with usage-cap, probes with one submit at a time, then archives everything", async () => {
    const h = await harnesses.start();
    const { sim, ledger } = h.pipeline;
    sim.injectFaults("submit", { kind: "code", code: 433 }, { kind: "code", code: 433 });
    await h.worker({ settings: { usageCapProbeMs: 500 } });

    await h.pipeline.addRows("b433", [{ id: "first" }]);
    const harness = h;
    const pause = await until("a usage-cap pause", async () => (await harness.fleet().pause.get()) ?? false);
    expect(pause.kind).toBe("usage-cap");
    expect(pause.reason).toMatch(/usage cap/);
    // These meet the pause at the gate: they wait, while one probe at a time tests the cap.
    await h.pipeline.addRows("b433", rows(3));

    await until("the first probe", () => sim.stats().faults.code === 2);
    // The probe met the cap again: it was the only submit sent, and the pause holds.
    expect(sim.stats().creates).toBe(0);
    expect((await h.fleet().pause.get())?.kind).toBe("usage-cap");
    expect(await ledger.getBatch("b433")).toMatchObject({ queued: 4, failed: 0 });

    const summary = await h.pipeline.waitFinished("b433", 15_000);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0 });
    expect(sim.stats().creates).toBe(4);
    expect(sim.stats().faults.code).toBe(2);
    expect(await h.fleet().pause.get()).toBeNull();
  });

  it("401: pauses with bad-key and says to resume; after `resume` and the right key, everything archives", async () => {
    const h = await harnesses.start();
    const { sim, ledger } = h.pipeline;
    const wrongKey = `wrong-key-${randomUUID()}`;
    const wrong = await h.worker({ env: { KIE_API_KEY: wrongKey } });
    await h.pipeline.addRows("b401", rows(3));

    const harness = h;
    const pause = await until(
      "a bad-key pause",
      async () => (await harness.fleet(wrongKey).pause.get()) ?? false,
    );
    expect(pause.kind).toBe("bad-key");
    expect(pause.reason).toMatch(/KIE_API_KEY/);
    expect(pause.reason).toMatch(/resume/);
    expect(pause.nextProbeAt).toBeUndefined(); // nothing probes a wrong key: an operator must act
    expect(sim.stats().creates).toBe(0);

    // Shutting down releases the waiting submits; none fails.
    const closeStarted = Date.now();
    await wrong.close(10_000);
    expect(Date.now() - closeStarted).toBeLessThan(5_000);
    expect(await ledger.getBatch("b401")).toMatchObject({ queued: 3, failed: 0 });

    expect(await h.fleet(wrongKey).pause.resume()).toBe(true);
    expect(await h.fleet(wrongKey).pause.get()).toBeNull();
    await h.worker();
    const summary = await h.pipeline.waitFinished("b401", 15_000);
    expect(summary).toMatchObject({ total: 3, archived: 3, failed: 0 });
    expect(sim.stats().creates).toBe(3);
  });
});
