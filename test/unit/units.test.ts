import { describe, expect, it } from "vitest";
import { parseDuration, parseRate, parseSize } from "../../src/core/values.js";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["10s", 10_000],
    ["1.5s", 1500],
    ["8m", 480_000],
    ["2h", 7_200_000],
    ["14d", 1_209_600_000],
    ["250", 250],
    [" 3S ", 3000],
    [42, 42],
  ] as const)("reads %j as %d ms", (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each(["", "ten seconds", "10x", "-5s", "s", "1.2.3s"])("rejects %j, naming it", (input) => {
    expect(() => parseDuration(input)).toThrow(
      new RegExp(`Invalid duration ${JSON.stringify(input).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
  });

  it("rejects a negative number", () => {
    expect(() => parseDuration(-1)).toThrow(/Invalid duration -1/);
  });
});

describe("parseSize", () => {
  it.each([
    ["100", 100],
    ["100B", 100],
    ["1KiB", 1024],
    ["25MB", 25_000_000],
    ["2MiB", 2_097_152],
    ["1.5KB", 1500],
    ["1gb", 1_000_000_000],
  ] as const)("reads %j as %d bytes", (input, expected) => {
    expect(parseSize(input)).toBe(expected);
  });

  it.each(["", "lots", "5TB", "-1MB", "MB"])("rejects %j, naming it", (input) => {
    expect(() => parseSize(input)).toThrow(`Invalid size ${JSON.stringify(input)}`);
  });
});

describe("parseRate", () => {
  it.each([
    ["20/10s", { limit: 20, windowMs: 10_000 }],
    ["5/500ms", { limit: 5, windowMs: 500 }],
    ["5/s", { limit: 5, windowMs: 1000 }],
    ["100/1m", { limit: 100, windowMs: 60_000 }],
  ] as const)("reads %j", (input, expected) => {
    expect(parseRate(input)).toEqual(expected);
  });

  it.each(["20", "20/", "/10s", "0/10s", "2.5/10s", "20/0s", "20/10x", "1/2/3"])(
    "rejects %j, naming it",
    (input) => {
      expect(() => parseRate(input)).toThrow(`Invalid rate ${JSON.stringify(input)}`);
    },
  );
});
