import { describe, expect, it } from "vitest";
import {
  FLEET_BACKOFF,
  fleetBackoff,
  POLL_BACKOFF,
  pollDelay,
  RETRY_BACKOFF,
  retryDelay,
  scaledPollDelay,
} from "../../src/core/backoff.js";

const fixed = (value: number) => () => value;
const mid = fixed(0.5); // jitter factor 1: the exact step

describe("pollDelay", () => {
  it.each([
    [0, 5_000],
    [1, 7_500],
    [2, 11_250],
    [3, 16_875],
    [4, 25_313],
    [5, 37_969],
    [6, 56_953],
    [7, 60_000],
    [50, 60_000],
    [10_000, 60_000],
  ])("check %i waits %i ms without jitter", (attempt, expected) => {
    expect(pollDelay(attempt, mid)).toBe(expected);
  });

  it.each([
    [0, 0, 4_000],
    [0, 0.999_999, 6_000],
    [1, 0, 6_000],
    [1, 1 - 1e-9, 9_000],
  ])("check %i with rand %d waits %i ms (±20%%)", (attempt, r, expected) => {
    expect(pollDelay(attempt, fixed(r))).toBe(expected);
  });

  it("never exceeds the 60 s cap, jitter included, and spreads below it", () => {
    expect(pollDelay(30, fixed(0.999_999))).toBe(POLL_BACKOFF.maxMs);
    expect(pollDelay(30, fixed(0))).toBe(48_000);
  });

  it.each([-1, Number.NaN, 1.7])("treats a nonsense attempt %d as a whole step", (attempt) => {
    expect(pollDelay(attempt, mid)).toBe(Math.trunc(attempt) === 1 ? 7_500 : 5_000);
  });
});

describe("scaledPollDelay", () => {
  it.each([
    [0, 5_000, 5_000],
    [0, 1_000, 1_000],
    [2, 1_000, 2_250],
    [0, 10_000, 10_000],
    [50, 1_000, 12_000],
  ])("check %i with a first step of %i ms waits %i ms", (checks, firstMs, expected) => {
    expect(scaledPollDelay(checks, firstMs, mid)).toBe(expected);
  });

  it("is the plain poll schedule without a first step", () => {
    expect(scaledPollDelay(3, undefined, mid)).toBe(pollDelay(3, mid));
  });
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
