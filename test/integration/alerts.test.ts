/**
 * Alerts reach a local HTTP receiver (a Slack-style incoming webhook): a batch finishing, a 402
 * pause and its resume, an operator's pause, an image waiting past a day. Each is delivered once
 * however many workers notice it, and a receiver that hangs never slows a stage.
 */
import { afterEach, describe, expect, it } from "vitest";
import { alertClaimKey } from "../../src/alerts/index.js";
import type { RunningWorker } from "../../src/app/index.js";
import { type AlertReceiver, startAlertReceiver } from "../helpers/alert-receiver.js";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

/** Intervals short enough for a test; the defaults are 15 s and 10 min. */
const FAST = { pauseWatchMs: 200, sweepEveryMs: 200 };
const rows = (n: number, prefix = "r") => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}` }));

/** How many alerts of `event` a worker has finished with (sent, duplicate, failed...). */
async function alertOutcomes(worker: RunningWorker, event: string, outcome?: string): Promise<number> {
  const { values } = await worker.metrics.alerts.get();
  return values
    .filter((v) => v.labels.event === event && (outcome === undefined || v.labels.outcome === outcome))
    .reduce((sum, v) => sum + v.value, 0);
}

describe("alerts", () => {
  let h: WorkerHarness | undefined;
  let receiver: AlertReceiver | undefined;
  afterEach(async () => {
    await h?.close();
    await receiver?.close();
    h = undefined;
    receiver = undefined;
  });

  it("a finished batch is told once, with its counts and credits, though two workers notice it", async () => {
    receiver = await startAlertReceiver();
    h = await startHarness();
    const env = { KIE_ALERT_WEBHOOK_URL: receiver.url };
    // Each worker's sweep also re-notices every batch finished in the last minute: the claim decides.
    const alerts = { ...FAST, recentFinishMs: 60_000 };
    const workers = [await h.worker({ env, alerts }), await h.worker({ env, alerts })];
    await h.pipeline.addRows("bf", rows(3));
    const summary = await h.pipeline.waitFinished("bf");

    const [alert] = await until("the batch.finished alert", () => {
      const found = receiver!.of("batch.finished");
      return found.length > 0 ? found : false;
    });
    // Both workers have noticed it again by now, and found it claimed.
    for (const worker of workers) {
      await until(
        "a duplicate notice",
        async () => (await alertOutcomes(worker, "batch.finished", "duplicate")) > 0,
      );
    }
    for (const worker of workers) await worker.close(5_000);
    expect(receiver.of("batch.finished")).toHaveLength(1);

    expect(alert).toMatchObject({
      event: "batch.finished",
      batch: "bf",
      deployment: h.pipeline.prefix,
      total: 3,
      archived: 3,
      failed: 0,
      cancelled: 0,
      creditsSpent: summary.creditsSpent,
      finishedAt: new Date(summary.finishedAt!).toISOString(),
    });
    expect(alert!.text).toContain('batch "bf" finished: 3 archived, 0 failed, 0 cancelled of 3');
    expect(alert!.text).toContain(`${summary.creditsSpent} credits spent`);
    const claim = alertClaimKey(h.pipeline.prefix, `batch.finished:bf:${summary.finishedAt}`);
    expect(await h.pipeline.redis.exists(claim)).toBe(1);
    expect(await h.pipeline.redis.pttl(claim)).toBeGreaterThan(86_400_000);
  });

  it("a 402 pause is told with its reason, and its resume when credits return; never the key", async () => {
    receiver = await startAlertReceiver();
    h = await startHarness({ sim: { credits: 16 } }); // two images at 8 credits
    const worker = await h.worker({
      env: { KIE_ALERT_WEBHOOK_URL: receiver.url },
      alerts: FAST,
      settings: { creditsProbeMs: 300 },
    });
    await h.pipeline.addRows("b402", rows(4));

    const [paused] = await until("the pause alert", () => {
      const found = receiver!.of("submissions.paused");
      return found.length > 0 ? found : false;
    });
    expect(paused).toMatchObject({ kind: "out-of-credits", by: "worker" });
    expect(paused!.text).toMatch(/submissions PAUSED \(out-of-credits\).*credits insufficient/);
    expect(receiver.of("submissions.resumed")).toHaveLength(0);

    h.pipeline.sim.setCredits(1_000);
    const [resumed] = await until("the resume alert", () => {
      const found = receiver!.of("submissions.resumed");
      return found.length > 0 ? found : false;
    });
    expect(resumed).toMatchObject({ kind: "out-of-credits", by: "probe", since: paused!.since });
    await h.pipeline.waitFinished("b402");
    await until("the batch.finished alert", () => receiver!.of("batch.finished").length === 1);
    await worker.close(5_000);

    // The watcher saw the same pause: its notice found the claim taken.
    expect(receiver.of("submissions.paused")).toHaveLength(1);
    expect(receiver.of("submissions.resumed")).toHaveLength(1);
    for (const body of receiver.bodies) expect(body).not.toContain(h.pipeline.apiKey);
  });

  it("`kie-batch pause` and `resume` are told too: a worker sees the pause come and go", async () => {
    receiver = await startAlertReceiver();
    h = await startHarness();
    await h.worker({ env: { KIE_ALERT_WEBHOOK_URL: receiver.url }, alerts: FAST });
    const { state } = await h.fleet().pause.pause("manual", "paused by ops@example with `kie-batch pause`");
    const [paused] = await until("the pause alert", () => {
      const found = receiver!.of("submissions.paused");
      return found.length > 0 ? found : false;
    });
    expect(paused).toMatchObject({
      kind: "manual",
      by: "observed",
      reason: "paused by ops@example with `kie-batch pause`",
      since: new Date(state.since).toISOString(),
    });
    await h.fleet().pause.resume();
    const [resumed] = await until("the resume alert", () => {
      const found = receiver!.of("submissions.resumed");
      return found.length > 0 ? found : false;
    });
    expect(resumed).toMatchObject({ kind: "manual", by: "observed" });
    expect(resumed!.text).toMatch(/submissions RESUMED/);
  });

  it("an image still not archived a day after it finished is told, once a day per batch", async () => {
    receiver = await startAlertReceiver();
    h = await startHarness();
    const { ledger } = h.pipeline;
    await ledger.addRows("blate", [
      { id: "old", line: 2, prompt: "p", params: {}, metadata: {}, estimatedCredits: 8 },
      { id: "older", line: 3, prompt: "p", params: {}, metadata: {}, estimatedCredits: 8 },
    ]);
    const now = Date.now();
    for (const [id, ageH] of [
      ["old", 25],
      ["older", 30],
    ] as const) {
      await ledger.transition("blate", id, { to: "archiving", set: { completedAt: now - ageH * 3_600_000 } });
    }
    // Only the submit stage: nothing archives these rows while the sweep looks at them.
    const worker = await h.worker({
      stages: ["submit"],
      env: { KIE_ALERT_WEBHOOK_URL: receiver.url },
      alerts: FAST,
    });
    const [late] = await until("the late-archive alert", () => {
      const found = receiver!.of("image.unarchived_24h");
      return found.length > 0 ? found : false;
    });
    expect(late).toMatchObject({ batch: "blate", rowId: "older", archiving: 2 });
    expect(late!.text).toMatch(/row older finished 30\.0 h ago and is still not archived \(2 waiting\)/);
    await until(
      "the sweep noticing it again",
      async () => (await alertOutcomes(worker, "image.unarchived_24h", "duplicate")) > 0,
    );
    expect(receiver.of("image.unarchived_24h")).toHaveLength(1);
  });

  it("a receiver that hangs slows no stage: the batch finishes as fast, and the worker stops on time", async () => {
    receiver = await startAlertReceiver({ hang: true });
    h = await startHarness({ sim: { credits: 16 } });
    const worker = await h.worker({
      env: { KIE_ALERT_WEBHOOK_URL: receiver.url },
      // Each delivery waits a minute for the receiver: everything below must not.
      alerts: { ...FAST, timeoutMs: 60_000 },
      settings: { creditsProbeMs: 300 },
    });
    await h.pipeline.addRows("bhang", rows(6));
    await until(
      "the pause alert to reach the receiver (which never answers)",
      () => receiver!.of("submissions.paused").length === 1,
    );
    const resumedAt = Date.now();
    h.pipeline.sim.setCredits(1_000);
    const summary = await h.pipeline.waitFinished("bhang", 30_000);
    expect(summary).toMatchObject({ total: 6, archived: 6 });
    // Four rows after a 300 ms probe take about 5 s here, alerts or none (the pause gate looks every
    // 2 s): far from the minute that any stage waiting on the hung delivery would take.
    expect(Date.now() - resumedAt).toBeLessThan(20_000);
    expect(receiver.alerts).toHaveLength(1); // the others wait behind the hung delivery

    const closing = Date.now();
    await worker.close(5_000);
    expect(Date.now() - closing).toBeLessThan(5_000);
    // The hung delivery was given up at shutdown: not sent twice, not retried.
    await until(
      "the hung delivery given up",
      async () => (await alertOutcomes(worker, "submissions.paused", "failed")) === 1,
    );
  });
});
