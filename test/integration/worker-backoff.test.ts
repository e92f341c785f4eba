/**
 * 429 and 455 are the fleet's business, not a row's: every submitter backs off, no attempt is
 * spent, and every row is archived once the service takes requests again.
 */
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `r-${i + 1}` }));

describe("worker: fleet backoff on 429 and 455", () => {
  const harnesses = harnessPerTest();

  it("a 429 on submit backs the fleet off, costs no attempt and fails no row", async () => {
    // One attempt per submit: had a 429 consumed it, its row would fail.
    const h = await harnesses.start({ env: { KIE_SUBMIT_ATTEMPTS: "1" } });
    const { sim, ledger } = h.pipeline;
    sim.injectFaults(
      "submit",
      { kind: "code", code: 429 },
      { kind: "code", code: 429, httpStatus: 429 }, // a proxy that also sets the HTTP status
    );
    await h.worker();
    await h.pipeline.addRows("b429", rows(4));

    const backoff = await until("the fleet backoff", () =>
      h
        ?.fleet()
        .backoff.get()
        .then((b) => b ?? false),
    );
    expect(backoff.kind).toBe("rate-limited");

    const summary = await h.pipeline.waitFinished("b429", 15_000);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0 });
    const stats = sim.stats();
    expect(stats.faults.code).toBe(2);
    expect(stats.creates).toBe(4);
    // The rows that met the 429 went again only after the fleet's 2 s backoff.
    expect(Math.max(...stats.createTimes) - Math.min(...stats.createTimes)).toBeGreaterThanOrEqual(1_500);
    for (const { id } of rows(4)) expect((await ledger.getRow("b429", id))?.error).toBeUndefined();
  });

  it("a simulator with a smaller rate limit than KIE_RATE_LIMIT: 429s are absorbed, every row archives", async () => {
    const h = await harnesses.start({
      sim: { rateLimit: { limit: 3, windowMs: 1_500 } },
      env: { KIE_SUBMIT_ATTEMPTS: "1", KIE_RATE_LIMIT: "20/10s" },
    });
    await h.worker();
    await h.pipeline.addRows("bslow", rows(8));

    const summary = await h.pipeline.waitFinished("bslow", 18_000);
    expect(summary).toMatchObject({ total: 8, archived: 8, failed: 0 });
    const stats = h.pipeline.sim.stats();
    expect(stats.rateLimited).toBeGreaterThan(0); // the limit was really met
    expect(stats.creates).toBe(8);
    expect(Math.max(...Object.values(stats.createsByRequestHash))).toBe(1);
  });

  it("455 maintenance: submissions wait while it lasts, then every row archives", async () => {
    const h = await harnesses.start({ env: { KIE_SUBMIT_ATTEMPTS: "1" } });
    const { sim } = h.pipeline;
    sim.setMaintenance(true);
    // 30 s, 60 s, ... scaled to 1.5 s, 3 s: the ladder's shape, at test speed.
    await h.worker({ settings: { fleetBackoffScale: 0.05 } });
    await h.pipeline.addRows("b455", rows(3));

    // Maintenance lasts until the fleet has backed off twice in a row.
    const second = await until("a second maintenance backoff", async () => {
      const b = await h?.fleet().backoff.get();
      return b && b.consecutive >= 2 ? b : false;
    });
    expect(second.kind).toBe("maintenance");
    expect(sim.stats().creates).toBe(0);
    expect(await h.pipeline.ledger.getBatch("b455")).toMatchObject({ queued: 3, failed: 0 });
    sim.setMaintenance(false);

    const summary = await h.pipeline.waitFinished("b455", 15_000);
    expect(summary).toMatchObject({ total: 3, archived: 3, failed: 0 });
    expect(sim.stats().creates).toBe(3);
  });
});
