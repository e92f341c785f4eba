/**
 * The fetch watchdog's decision (src/bull/fetch-watchdog.ts): a stage worker is replaced only when
 * every sample for `stallMs` saw jobs ready and a free slot, and it took no job meanwhile.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { FetchWatchdog, type Starved, watchFetches } from "../../src/bull/fetch-watchdog.js";

const STALL = 15_000;

describe("FetchWatchdog", () => {
  it("replaces a worker that took nothing for stallMs while jobs were ready and it had a free slot", () => {
    const dog = new FetchWatchdog(STALL, 4);
    const at = (t: number, ready = 3, inHand = 1) => dog.observe({ at: t, ready, inHand, lastTakenAt: 0 });
    expect(at(1_000)).toEqual({ restart: false, starvedMs: 0 });
    expect(at(10_000)).toEqual({ restart: false, starvedMs: 9_000 });
    expect(at(15_999)).toEqual({ restart: false, starvedMs: 14_999 });
    expect(at(16_000)).toEqual({ restart: true, starvedMs: 15_000 });
    // The count starts again after a replacement.
    expect(at(17_000)).toEqual({ restart: false, starvedMs: 0 });
  });

  it("counts from the last job taken, not from the first starving sample", () => {
    const dog = new FetchWatchdog(STALL, 2);
    expect(dog.observe({ at: 0, ready: 5, inHand: 0, lastTakenAt: 0 }).restart).toBe(false);
    expect(dog.observe({ at: 14_000, ready: 5, inHand: 0, lastTakenAt: 12_000 })).toEqual({
      restart: false,
      starvedMs: 2_000,
    });
    expect(dog.observe({ at: 26_999, ready: 5, inHand: 0, lastTakenAt: 12_000 }).restart).toBe(false);
    expect(dog.observe({ at: 27_000, ready: 5, inHand: 0, lastTakenAt: 12_000 }).restart).toBe(true);
  });

  it("leaves alone a worker with every slot busy, or a queue with nothing ready; either starts the count again", () => {
    const dog = new FetchWatchdog(STALL, 2);
    expect(dog.observe({ at: 0, ready: 5, inHand: 0, lastTakenAt: 0 }).restart).toBe(false);
    // Busy: ready jobs are not this worker's to take.
    expect(dog.observe({ at: 20_000, ready: 5, inHand: 2, lastTakenAt: 0 })).toEqual({
      restart: false,
      starvedMs: 0,
    });
    expect(dog.observe({ at: 21_000, ready: 5, inHand: 1, lastTakenAt: 0 }).restart).toBe(false);
    expect(dog.observe({ at: 35_000, ready: 5, inHand: 1, lastTakenAt: 0 }).restart).toBe(false);
    // Nothing ready: nothing to take.
    expect(dog.observe({ at: 40_000, ready: 0, inHand: 0, lastTakenAt: 0 }).restart).toBe(false);
    expect(dog.observe({ at: 41_000, ready: 1, inHand: 0, lastTakenAt: 0 }).restart).toBe(false);
    expect(dog.observe({ at: 55_999, ready: 1, inHand: 0, lastTakenAt: 0 }).restart).toBe(false);
    expect(dog.observe({ at: 56_000, ready: 1, inHand: 0, lastTakenAt: 0 }).restart).toBe(true);
  });

  it("starts again after a sample it could not take (reset)", () => {
    const dog = new FetchWatchdog(STALL, 1);
    dog.observe({ at: 0, ready: 1, inHand: 0, lastTakenAt: 0 });
    dog.reset();
    expect(dog.observe({ at: 20_000, ready: 1, inHand: 0, lastTakenAt: 0 })).toEqual({
      restart: false,
      starvedMs: 0,
    });
  });
});

describe("watchFetches", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("samples each stage every everyMs and restarts only the starving one; a failed count starts its count again", async () => {
    vi.useFakeTimers({ now: 0 });
    const restarts: Array<[string, Starved]> = [];
    let pollCountFails = false;
    const watch = watchFetches({
      stages: ["submit", "poll", "archive"],
      concurrency: { submit: 4, poll: 16, archive: 4 },
      stallMs: 10_000,
      everyMs: 2_000,
      now: () => Date.now(),
      ready: async (stage) => {
        if (stage === "poll" && pollCountFails) throw new Error("CLUSTERDOWN");
        return stage === "archive" ? 0 : 7;
      },
      // submit is busy (every slot taken); poll starves; archive has nothing ready.
      fetchOf: (stage) => ({ inHand: stage === "submit" ? 4 : stage === "poll" ? 3 : 0, lastTakenAt: 0 }),
      restart: (stage, starved) => restarts.push([stage, starved]),
    });
    try {
      await vi.advanceTimersByTimeAsync(6_000); // samples at 2, 4, 6 s: poll starving since 2 s
      pollCountFails = true;
      await vi.advanceTimersByTimeAsync(2_000); // 8 s: no count, the count starts again
      pollCountFails = false;
      await vi.advanceTimersByTimeAsync(10_000); // 10 .. 18 s: starving since 10 s, 8 s so far
      expect(restarts).toEqual([]);
      await vi.advanceTimersByTimeAsync(2_000); // 20 s: 10 s
      // The numbers it decided on, for the log: 7 ready, 3 of 16 slots busy.
      expect(restarts).toEqual([["poll", { starvedMs: 10_000, ready: 7, inHand: 3, concurrency: 16 }]]);
      await vi.advanceTimersByTimeAsync(8_000);
      expect(restarts).toHaveLength(1);
    } finally {
      watch.stop();
    }
    await vi.advanceTimersByTimeAsync(30_000);
    expect(restarts).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
