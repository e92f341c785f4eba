/**
 * The status-call schedule, simulated: a pure loop over `pollDelay` (no clock, no Redis) that
 * plays one task's checks the way the poll stage runs them (submit sets the first delay; each
 * check that finds the task unfinished asks for the next; past KIE_MAX_WAIT a check fails the
 * row; in webhook mode the task's end promotes the delayed check), and counts the calls.
 * Goals (issue 10): an 8-minute generation costs ≤ 8 status calls polling, ≤ 3 with callbacks.
 */
import { describe, expect, it } from "vitest";
import { POLL_BACKOFF, type PollSchedule, pollDelay, type Rand } from "../../src/core/backoff.js";
import { seeded } from "../helpers/seeded.js";

const SECOND = 1_000;
const MINUTE = 60_000;
const MAX_WAIT_MS = 30 * MINUTE;
const POLLING: PollSchedule = { firstMs: POLL_BACKOFF.firstMs, maxWaitMs: MAX_WAIT_MS };
const WEBHOOK: PollSchedule = { ...POLLING, webhook: true };
/** KIE's documented create rate, 20 per 10 s, and KIE_POLL_RATE's default. */
const CREATES_PER_SECOND = 2;
const POLL_RATE = 20;

interface Played {
  /** When each status call was made, from the submit. */
  calls: number[];
  /** How the task ended for the worker: seen finished, or failed at KIE_MAX_WAIT. */
  outcome: "finished" | "past-max-wait";
}

/**
 * One task whose generation takes `generationMs` (Infinity: never ends), played against the
 * schedule. A callback (webhook mode) arrives when the generation ends and promotes the delayed
 * check to that moment; one callback per task, so the once-a-minute limit never bites here.
 */
function play(generationMs: number, schedule: PollSchedule, rand: Rand): Played {
  const calls: number[] = [];
  let at = pollDelay(0, 0, schedule, rand);
  for (;;) {
    if (schedule.webhook === true && generationMs < at) at = generationMs;
    calls.push(at);
    if (at >= generationMs) return { calls, outcome: "finished" };
    if (at > (schedule.maxWaitMs ?? Number.POSITIVE_INFINITY)) return { calls, outcome: "past-max-wait" };
    at += pollDelay(calls.length, at, schedule, rand);
  }
}

const RANDS: [string, () => Rand][] = [
  ["every wait at its shortest", () => () => 0],
  ["every wait exact", () => () => 0.5],
  ["every wait at its longest", () => () => 0.999_999],
  ["a seeded spread", () => seeded(10)],
];

/** The most calls any of the jitter patterns costs a generation of `ms`. */
function mostCalls(ms: number, schedule: PollSchedule): number {
  return Math.max(...RANDS.map(([, rand]) => play(ms, schedule, rand()).calls.length));
}

/** Mean calls per task over many tasks with independent jitter. */
function meanCalls(ms: number, schedule: PollSchedule, tasks = 2_000): number {
  const rand = seeded(7);
  let total = 0;
  for (let i = 0; i < tasks; i++) total += play(ms, schedule, rand).calls.length;
  return total / tasks;
}

describe("poll schedule, simulated: status calls per task", () => {
  it.each([
    // generation, most calls polling, most calls with callbacks
    [30 * SECOND, 2, 1],
    [2 * MINUTE, 5, 1],
    [8 * MINUTE, 7, 1],
    [15 * MINUTE, 10, 3],
  ])("a generation of %i ms costs at most %i calls polling and %i with callbacks", (ms, polling, webhook) => {
    expect(mostCalls(ms, POLLING)).toBeLessThanOrEqual(polling);
    expect(mostCalls(ms, WEBHOOK)).toBeLessThanOrEqual(webhook);
  });

  it("meets issue 10's goals for 8-minute generations: ≤ 8 polling, ≤ 3 with callbacks", () => {
    expect(mostCalls(8 * MINUTE, POLLING)).toBeLessThanOrEqual(8);
    expect(meanCalls(8 * MINUTE, POLLING)).toBeLessThanOrEqual(7);
    expect(mostCalls(8 * MINUTE, WEBHOOK)).toBeLessThanOrEqual(3);
  });

  it.each([
    ["polling", POLLING],
    ["webhook", WEBHOOK],
  ])(
    "%s: KIE's documented create rate of generations up to 15 min fits KIE_POLL_RATE's default",
    (_mode, schedule) => {
      for (const ms of [30 * SECOND, 2 * MINUTE, 8 * MINUTE, 15 * MINUTE]) {
        expect(CREATES_PER_SECOND * meanCalls(ms, schedule)).toBeLessThan(POLL_RATE);
      }
    },
  );

  it.each([
    ["polling", POLLING, 16],
    ["webhook", WEBHOOK, 7],
  ])(
    "%s: a task that never ends fails within one first step of KIE_MAX_WAIT, after at most %i calls",
    (_mode, schedule, most) => {
      for (const [, rand] of RANDS) {
        const { calls, outcome } = play(Number.POSITIVE_INFINITY, schedule, rand());
        expect(outcome).toBe("past-max-wait");
        expect(calls.at(-1)).toBeGreaterThan(MAX_WAIT_MS);
        expect(calls.at(-1)).toBeLessThanOrEqual(MAX_WAIT_MS + POLL_BACKOFF.firstMs);
        expect(calls.length).toBeLessThanOrEqual(most);
      }
    },
  );

  it("a finished generation is seen within one capped step polling, and at its callback in webhook mode", () => {
    for (const ms of [30 * SECOND, 2 * MINUTE, 8 * MINUTE, 15 * MINUTE]) {
      for (const [, rand] of RANDS) {
        const polled = play(ms, POLLING, rand()).calls.at(-1) ?? 0;
        expect(polled - ms).toBeLessThanOrEqual(POLL_BACKOFF.capSteps * POLL_BACKOFF.firstMs);
        expect(play(ms, WEBHOOK, rand()).calls.at(-1)).toBe(ms);
      }
    }
  });

  it("no task is checked sooner than 80% of the first step after its last check (KIE: no faster than 2-3 s)", () => {
    const rand = seeded(3);
    for (const ms of [30 * SECOND, 8 * MINUTE, Number.POSITIVE_INFINITY]) {
      const { calls } = play(ms, POLLING, rand);
      const gaps = calls.map((at, i) => at - (calls[i - 1] ?? 0));
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(0.8 * POLL_BACKOFF.firstMs);
    }
  });

  it("tasks created together spread their checks instead of calling in lockstep", () => {
    const rand = seeded(42);
    const tasks = 1_000;
    const perSecond = new Map<number, number>();
    for (let i = 0; i < tasks; i++) {
      // All created in the same instant (at most 2 a second in practice, but jobs due together
      // after a long stop look like this).
      for (const at of play(8 * MINUTE, POLLING, rand).calls) {
        const second = Math.floor(at / SECOND);
        perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
      }
    }
    // Without jitter all 1,000 would call in the same second at every step; ±20% spreads even
    // the first step over 8 s.
    expect(Math.max(...perSecond.values())).toBeLessThan(tasks / 6);
  });

  it("at KIE's create rate, 8-minute generations average well under KIE_POLL_RATE, and the seconds over it queue briefly", () => {
    const rand = seeded(99);
    const perSecond = new Map<number, number>();
    const createdForMs = 30 * MINUTE;
    for (let created = 0; created < (createdForMs / SECOND) * CREATES_PER_SECOND; created++) {
      const submittedAt = (created / CREATES_PER_SECOND) * SECOND;
      for (const at of play(8 * MINUTE, POLLING, rand).calls) {
        const second = Math.floor((submittedAt + at) / SECOND);
        perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
      }
    }
    // The steady state: after the first generations end, before the creates stop.
    const steady = [...perSecond].filter(([second]) => second >= 12 * 60 && second < createdForMs / SECOND);
    const mean = steady.reduce((sum, [, n]) => sum + n, 0) / steady.length;
    expect(mean).toBeLessThan(14);
    // The limiter lets KIE_POLL_RATE through each second; the rest waits for the next. The queue
    // never holds more than a second's calls: a busy second costs a second of delay, no more.
    let queued = 0;
    let mostQueued = 0;
    for (const [, n] of steady.sort(([a], [b]) => a - b)) {
      queued = Math.max(0, queued + n - POLL_RATE);
      mostQueued = Math.max(mostQueued, queued);
    }
    expect(mostQueued).toBeLessThanOrEqual(POLL_RATE);
  });
});
