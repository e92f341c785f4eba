import { describe, expect, it } from "vitest";
import {
  FLEET_BACKOFF,
  fleetBackoff,
  POLL_BACKOFF,
  pollDelay,
  RETRY_BACKOFF,
  retryDelay,
} from "../../src/core/backoff.js";

const fixed = (value: number) => () => value;
const mid = fixed(0.5); // jitter factor 1: the exact step

const MINUTE = 60_000;
/** The defaults: KIE_POLL_INTERVAL 20 s, KIE_MAX_WAIT 30 min. */
const polling = { firstMs: POLL_BACKOFF.firstMs, maxWaitMs: 30 * MINUTE };
const webhook = { ...polling, webhook: true };

describe("pollDelay: polling mode", () => {
  it.each([
    [0, 20_000],
    [1, 32_000],
    [2, 51_200],
    [3, 81_920],
    [4, 131_072],
    [5, 180_000],
    [50, 180_000],
    [10_000, 180_000],
  ])("after %i checks the next waits %i ms without jitter", (checks, expected) => {
    expect(pollDelay(checks, 0, polling, mid)).toBe(expected);
  });

  it.each([
    [0, 0, 16_000],
    [0, 0.999_999, 24_000],
    [1, 0, 25_600],
    [1, 1 - 1e-9, 38_400],
  ])("after %i checks with rand %d the next waits %i ms (±20%%)", (checks, r, expected) => {
    expect(pollDelay(checks, 0, polling, fixed(r))).toBe(expected);
  });

  it("never exceeds the cap of 9 first steps (180 s), jitter included, and spreads below it", () => {
    expect(pollDelay(30, 0, polling, fixed(0.999_999))).toBe(180_000);
    expect(pollDelay(30, 0, polling, fixed(0))).toBe(144_000);
  });

  it.each([
    [0, 1_000, 1_000],
    [2, 1_000, 2_560],
    [50, 1_000, 9_000],
    [0, 200, 200],
  ])(
    "after %i checks with a first step (KIE_POLL_INTERVAL) of %i ms the next waits %i ms",
    (checks, firstMs, expected) => {
      expect(pollDelay(checks, 0, { firstMs }, mid)).toBe(expected);
    },
  );

  it.each([-1, Number.NaN, 1.7])("treats a nonsense check count %d as a whole step", (checks) => {
    expect(pollDelay(checks, 0, polling, mid)).toBe(Math.trunc(checks) === 1 ? 32_000 : 20_000);
  });
});

describe("pollDelay: webhook mode (the callback wakes the poll; the schedule is a safety net)", () => {
  it.each([
    [0, 10 * MINUTE],
    [1, 5 * MINUTE],
    [7, 5 * MINUTE],
  ])("after %i checks the next waits %i ms (a third, then a sixth of KIE_MAX_WAIT)", (checks, expected) => {
    expect(pollDelay(checks, 0, webhook, mid)).toBe(expected);
  });

  it.each([
    [0, 0, 8 * MINUTE],
    [0, 0.999_999, 12 * MINUTE],
  ])("after %i checks with rand %d the next waits %i ms (±20%%)", (checks, r, expected) => {
    expect(pollDelay(checks, 0, webhook, fixed(r))).toBe(expected);
  });

  it.each([0, 1, 2, 3, 8])(
    "never checks more often than polling mode (%i checks, KIE_MAX_WAIT 60 s)",
    (checks) => {
      const short = { firstMs: 20_000, maxWaitMs: MINUTE };
      expect(pollDelay(checks, 0, { ...short, webhook: true }, mid)).toBe(pollDelay(checks, 0, short, mid));
    },
  );

  it("without KIE_MAX_WAIT there is no safety net to stretch to: polling mode's ladder", () => {
    expect(pollDelay(1, 0, { firstMs: 20_000, webhook: true }, mid)).toBe(32_000);
  });
});

describe("pollDelay: KIE_MAX_WAIT", () => {
  it.each([
    ["polling, 29 min in", polling, 10, 29 * MINUTE, 80_000],
    ["polling, 10 min in", polling, 10, 10 * MINUTE, 180_000],
    ["polling, past the deadline", polling, 10, 31 * MINUTE, 20_000],
    ["webhook, 27 min in", webhook, 4, 27 * MINUTE, 200_000],
    ["webhook, 20 min in", webhook, 3, 20 * MINUTE, 5 * MINUTE],
    ["no deadline known", { firstMs: 20_000 }, 10, 29 * MINUTE, 180_000],
    ["an elapsed time that is not a number counts as none", polling, 10, Number.NaN, 180_000],
  ])(
    "%s: the next check lands at most one first step past the deadline (%i checks, %i ms) → %i ms",
    (_name, schedule, checks, elapsedMs, expected) => {
      expect(pollDelay(checks, elapsedMs, schedule, mid)).toBe(expected);
    },
  );
});

describe("retryDelay", () => {
  it.each([
    ["none", 0, 0.3, 1_000],
    ["none", 3, 0.3, 8_000],
    ["none", 10, 0.3, 60_000],
    ["full", 0, 0, 0],
    ["full", 2, 0.5, 2_000],
    ["full", 20, 0.5, 30_000],
    ["equal", 0, 0, 500],
    ["equal", 2, 0.5, 3_000],
    ["equal", 2, 1 - 1e-9, 4_000],
    ["equal", 1_000, 0, 30_000],
  ] as const)("%s jitter, retry %i, rand %d: %i ms", (jitter, attempt, r, expected) => {
    expect(retryDelay(attempt, { jitter, rand: fixed(r) })).toBe(expected);
  });

  it("takes base and cap from the caller and defaults to equal jitter", () => {
    expect(retryDelay(2, { baseMs: 100, maxMs: 250, rand: fixed(0) })).toBe(125);
    expect(retryDelay(0, { rand: fixed(0) })).toBe(RETRY_BACKOFF.baseMs / 2);
  });
});

describe("fleetBackoff", () => {
  it.each([
    [1, "rate-limited", 2_000],
    [2, "rate-limited", 4_000],
    [3, "rate-limited", 8_000],
    [5, "rate-limited", 32_000],
    [6, "rate-limited", 60_000],
    [1_000, "rate-limited", 60_000],
    [1, "maintenance", 30_000],
    [2, "maintenance", 60_000],
    [4, "maintenance", 240_000],
    [5, "maintenance", 300_000],
    [1_000, "maintenance", 300_000],
  ] as const)("hit %i in a row of %s: %i ms", (consecutive, kind, expected) => {
    expect(fleetBackoff(consecutive, kind)).toBe(expected);
  });

  it.each([0, -3, Number.NaN])("counts %d hits as the first", (consecutive) => {
    expect(fleetBackoff(consecutive, "rate-limited")).toBe(FLEET_BACKOFF["rate-limited"].baseMs);
  });
});
