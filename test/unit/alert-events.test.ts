/**
 * What each alert says, and how its id makes the same fact one event whoever notices it; the
 * pause watcher and the batch sweep that notice things outside the stages.
 */
import { describe, expect, it } from "vitest";
import { type AlertEvent, alertId, alertPayload, duration } from "../../src/alerts/events.js";
import { sweepLedger } from "../../src/alerts/ledger-sweep.js";
import { pauseWatcher } from "../../src/alerts/pause-watch.js";
import type { BatchSummary } from "../../src/ledger/index.js";

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

function summary(overrides: Partial<BatchSummary> = {}): BatchSummary {
  return {
    batch: "spring",
    createdAt: T0 - HOUR,
    updatedAt: T0,
    total: 12,
    queued: 0,
    submitted: 0,
    generating: 0,
    archiving: 0,
    archived: 11,
    failed: 1,
    cancelled: 0,
    creditsEstimated: 96,
    creditsReserved: 0,
    creditsSpent: 88,
    creditsUncertain: 0,
    uncertain: 0,
    resubmits: 1,
    waitingBudget: 0,
    ...overrides,
  };
}

describe("alerts: what each event says", () => {
  it("a finished batch: counts and credits, in the text and as fields", () => {
    const event: AlertEvent = { event: "batch.finished", summary: { ...summary(), finishedAt: T0 } };
    const payload = alertPayload(event, "prod", T0);
    expect(payload.text).toBe(
      'kie-batch [prod]: batch "spring" finished: 11 archived, 1 failed, 0 cancelled of 12; 88 credits spent (estimated 96)',
    );
    expect(payload).toMatchObject({
      event: "batch.finished",
      id: `batch.finished:spring:${T0}`,
      deployment: "prod",
      batch: "spring",
      total: 12,
      archived: 11,
      failed: 1,
      creditsSpent: 88,
      finishedAt: new Date(T0).toISOString(),
      durationMs: HOUR,
    });
  });

  it("a pause and its resume share the pause's start in their ids, whoever noticed them", () => {
    const paused: AlertEvent = {
      event: "submissions.paused",
      account: "a1b2c3",
      kind: "out-of-credits",
      reason: "KIE: credits insufficient",
      since: T0,
      by: "worker",
    };
    expect(alertId(paused)).toBe(alertId({ ...paused, by: "observed" }));
    expect(alertPayload(paused, "prod", T0).text).toBe(
      "kie-batch [prod]: submissions PAUSED (out-of-credits) on account a1b2c3: KIE: credits insufficient",
    );
    const resumed: AlertEvent = {
      event: "submissions.resumed",
      account: "a1b2c3",
      kind: "out-of-credits",
      reason: "KIE: credits insufficient",
      since: T0,
      resumedAt: T0 + 90 * 60_000,
      by: "probe",
    };
    expect(alertId(resumed)).toBe(alertId({ ...resumed, by: "observed", resumedAt: T0 + 1 }));
    expect(alertPayload(resumed, "prod", T0).text).toMatch(/RESUMED on account a1b2c3 after 90 min .*probe/);
    expect(alertPayload(resumed, "prod", T0)).toMatchObject({
      pausedMs: 90 * 60_000,
      kind: "out-of-credits",
    });
  });

  it("a late archive: at most one id per batch and day", () => {
    const late = (now: number): AlertEvent => ({
      event: "image.unarchived_24h",
      batch: "spring",
      rowId: "r7",
      completedAt: T0 - 25 * HOUR,
      archiving: 3,
      now,
      expiresAt: T0 + 13 * 24 * HOUR,
    });
    expect(alertId(late(T0))).toBe(alertId(late(T0 + HOUR)));
    expect(alertId(late(T0))).not.toBe(alertId(late(T0 + 24 * HOUR)));
    expect(alertPayload(late(T0), "prod", T0).text).toMatch(
      /row r7 finished 25\.0 h ago and is still not archived/,
    );
  });

  it.each([
    [5_000, "5 s"],
    [10 * 60_000, "10 min"],
    [5 * HOUR, "5.0 h"],
    [72 * HOUR, "3.0 days"],
  ])("durations read well: %d ms is %s", (ms, text) => {
    expect(duration(ms)).toBe(text);
  });
});

describe("alerts: noticed from outside the stages", () => {
  it("the pause watcher tells a new pause once, and its end as a resume", () => {
    const watch = pauseWatcher("acct", () => T0 + HOUR);
    const manual = { kind: "manual" as const, reason: "maintenance window", since: T0 };
    expect(watch(null)).toEqual([]);
    expect(watch(manual).map((e) => e.event)).toEqual(["submissions.paused"]);
    expect(watch(manual)).toEqual([]);
    const [resumed] = watch(null);
    expect(resumed).toMatchObject({
      event: "submissions.resumed",
      kind: "manual",
      since: T0,
      resumedAt: T0 + HOUR,
    });
  });

  it("a pause replaced by another is not a resume", () => {
    const watch = pauseWatcher("acct");
    watch({ kind: "out-of-credits", reason: "402", since: T0 });
    const events = watch({ kind: "manual", reason: "operator", since: T0 + 5 });
    expect(events.map((e) => e.event)).toEqual(["submissions.paused"]);
  });

  it("the sweep finds batches finished lately and images waiting more than a day", async () => {
    const batches = [
      summary({ batch: "done-now", finishedAt: T0 - 60_000 }),
      summary({ batch: "done-long-ago", finishedAt: T0 - 48 * HOUR }),
      summary({ batch: "late", archived: 5, archiving: 6, failed: 0, queued: 1 }),
      summary({ batch: "fresh", archived: 5, archiving: 6, failed: 0, queued: 1 }),
    ];
    const oldest: Record<string, number> = { late: T0 - 30 * HOUR, fresh: T0 - HOUR };
    const events = await sweepLedger(
      {
        listBatches: async () => batches,
        oldestUnarchived: async (batch) => ({ rowId: "r1", completedAt: oldest[batch]! }),
      },
      { recentFinishMs: 20 * 60_000, now: T0 },
    );
    expect(events.map((e) => alertId(e))).toEqual([
      `batch.finished:done-now:${T0 - 60_000}`,
      `image.unarchived_24h:late:${Math.floor(T0 / (24 * HOUR))}`,
    ]);
    expect(events[1]).toMatchObject({
      rowId: "r1",
      archiving: 6,
      expiresAt: T0 - 30 * HOUR + 14 * 24 * HOUR,
    });
  });
});
