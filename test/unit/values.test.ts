import { describe, expect, it } from "vitest";
import { ValueError } from "../../src/core/errors.js";
import {
  checkCredits,
  checkPriority,
  DEFAULT_PRIORITY,
  MAX_DEMO_ROWS,
  MAX_PORT,
  MAX_PRIORITY,
  parseBudget,
  parseCount,
  parseCredits,
  parseDurationRange,
  parseNumber,
  parsePort,
  parsePositiveNumber,
  parsePriority,
  parseResultsFormat,
  parseServiceUrl,
  parseSwitch,
  parseWholeNumber,
  withOption,
} from "../../src/core/values.js";

/** The ValueError `parse` threw, so a test can look at its message and option. */
function refusal(parse: () => unknown): ValueError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ValueError);
    return error as ValueError;
  }
  throw new Error("expected a ValueError, none was thrown");
}

describe("ports", () => {
  it.each([
    ["0", 0],
    ["8080", 8080],
    [String(MAX_PORT), MAX_PORT],
  ])("--port %j is %d", (text, port) => {
    expect(parsePort(text, "--port")).toBe(port);
  });

  it.each(["web", "", "-1", "65536", "80.5", " 80"])("--port %j is refused, naming the flag", (text) => {
    const error = refusal(() => parsePort(text, "--admin-listen"));
    expect(error.option).toBe("--admin-listen");
    expect(error.message).toBe(`--admin-listen: expected a port number from 0 to 65535, got "${text}"`);
  });
});

describe("priorities", () => {
  it.each([
    ["1", 1],
    [" 7 ", 7],
    [String(MAX_PRIORITY), MAX_PRIORITY],
  ])("--priority %j is %d", (text, priority) => {
    expect(parsePriority(text)).toBe(priority);
  });

  it.each(["0", "2097152", "1.5", "high", "", "1e3"])("--priority %j is refused", (text) => {
    const error = refusal(() => parsePriority(text));
    expect(error.option).toBe("--priority");
    expect(error.message).toContain(`found ${JSON.stringify(text)}`);
    expect(error.message).toContain(`without --priority run at ${DEFAULT_PRIORITY}`);
  });

  it.each([0, MAX_PRIORITY + 1, 1.5, Number.NaN])("a priority of %d given as a number is refused", (n) => {
    expect(() => checkPriority(n)).toThrow(ValueError);
  });
});

describe("credits and budgets", () => {
  it.each([
    ["0", 0],
    ["12.5", 12.5],
  ])("--budget %j is %d credits", (text, credits) => {
    expect(parseCredits(text)).toBe(credits);
  });

  it.each(["-5", "ten", "1e3", "", "0x10"])("--budget %j is refused", (text) => {
    expect(refusal(() => parseCredits(text)).message).toMatch(/^--budget: expected a number of credits/);
  });

  it.each([-1, Number.POSITIVE_INFINITY, Number.NaN])("a budget of %d given as a number is refused", (n) => {
    expect(() => checkCredits(n)).toThrow(ValueError);
  });

  it.each([
    ["20", 20],
    ["0.5", 0.5],
    ["none", null],
    [" None ", null],
  ])("budget command %j is %s", (text, budget) => {
    expect(parseBudget(text)).toBe(budget);
  });

  it.each(["", "lots", "-5", "1e3"])("budget command %j is refused", (text) => {
    expect(refusal(() => parseBudget(text)).message).toBe(
      `budget: expected a number of credits >= 0, or "none", got "${text}"`,
    );
  });
});

describe("counts", () => {
  it.each([
    ["1", 1, 1],
    ["0", 0, 0],
    [String(MAX_DEMO_ROWS), 1, MAX_DEMO_ROWS],
  ])("%j with a minimum of %d is %d", (text, min, value) => {
    expect(parseWholeNumber(text, "--rows", min, MAX_DEMO_ROWS)).toBe(value);
  });

  it.each([
    ["0", 1, '--concurrency-poll: expected a whole number >= 1, got "0"'],
    ["two", 1, '--concurrency-poll: expected a whole number >= 1, got "two"'],
    ["-3", 0, '--concurrency-poll: expected a whole number >= 0, got "-3"'],
  ])("%j (minimum %d) is refused", (text, min, message) => {
    expect(refusal(() => parseWholeNumber(text, "--concurrency-poll", min)).message).toBe(message);
  });

  it("a maximum is named in the message", () => {
    expect(refusal(() => parseWholeNumber("100001", "--rows", 1, MAX_DEMO_ROWS)).message).toBe(
      '--rows: expected a whole number from 1 to 100000, got "100001"',
    );
  });

  it.each([
    ["0.5", { min: 0, max: 1 }, 0.5],
    [3, { min: 0 }, 3],
    ["7", { min: 0, max: 10, integer: true }, 7],
  ])("number %j within %j is %d", (value, rule, expected) => {
    expect(parseNumber(value, "--x", rule)).toBe(expected);
  });

  it.each([
    ["", { min: 0 }, 'Invalid --x "": expected a number >= 0'],
    ["0", { min: Number.MIN_VALUE }, 'Invalid --x "0": expected a number > 0'],
    ["1.5", { min: 0, max: 9, integer: true }, 'Invalid --x "1.5": expected an integer from 0 to 9'],
  ])("number %j within %j is refused", (value, rule, message) => {
    expect(refusal(() => parseNumber(value, "--x", rule)).message).toBe(message);
  });
});

describe("durations, with the flag named", () => {
  it.each([
    ["2s-6s", { minMs: 2000, maxMs: 6000 }],
    ["5s", { minMs: 5000, maxMs: 5000 }],
    ["500ms - 1s", { minMs: 500, maxMs: 1000 }],
  ])("--latency %j", (text, range) => {
    expect(parseDurationRange(text, "--latency")).toEqual(range);
  });

  it.each(["6s-2s", "fast", "1s-2s-3s", "-2s"])("--latency %j is refused, naming the flag", (text) => {
    const error = refusal(() => parseDurationRange(text, "--latency"));
    expect(error.option).toBe("--latency");
    expect(error.message).toMatch(/--latency/);
    expect(error.message).toContain(JSON.stringify(text));
  });

  it("withOption prefixes a unit parser's message with the flag", () => {
    const error = refusal(() => withOption("--file-ttl", () => parseDurationRange("x", "--latency")));
    expect(error.option).toBe("--file-ttl");
    expect(error.message).toMatch(/^--file-ttl: /);
  });
});

describe("results format", () => {
  it.each([
    [undefined, "jsonl"],
    ["CSV", "csv"],
    ["jsonl", "jsonl"],
  ])("--format %j is %s", (text, format) => {
    expect(parseResultsFormat(text)).toBe(format);
  });

  it.each(["xml", ""])("--format %j is refused", (text) => {
    expect(refusal(() => parseResultsFormat(text)).message).toBe(
      `--format: expected jsonl or csv, got "${text}"`,
    );
  });
});

describe("environment values (the config names the variable)", () => {
  it.each([
    ["0", 0],
    [" 42 ", 42],
  ])("count %j is %d", (text, n) => {
    expect(parseCount(text, "a whole number")).toBe(n);
  });

  it.each(["-1", "1.5", "many", "99999999999999999999"])("count %j is refused", (text) => {
    expect(refusal(() => parseCount(text, "a whole number")).message).toBe(
      `expected a whole number, got ${JSON.stringify(text)}`,
    );
  });

  it.each([
    ["20", 20],
    ["0.5", 0.5],
  ])("positive number %j is %d", (text, n) => {
    expect(parsePositiveNumber(text, "a number > 0")).toBe(n);
  });

  it.each(["0", "-2", "x"])("positive number %j is refused", (text) => {
    expect(() => parsePositiveNumber(text, "a number > 0")).toThrow(ValueError);
  });

  it.each([
    ["yes", true],
    ["ON", true],
    ["0", false],
    ["", false],
  ])("switch %j is %s", (text, on) => {
    expect(parseSwitch(text)).toBe(on);
  });

  it("a switch that is neither is refused", () => {
    expect(refusal(() => parseSwitch("maybe")).message).toBe('expected true or false, got "maybe"');
  });

  it.each([
    ["https://api.kie.ai/", "https://api.kie.ai"],
    ["redis://127.0.0.1:6379", "redis://127.0.0.1:6379"],
  ])("URL %j is %j", (text, url) => {
    expect(parseServiceUrl(text, "an http(s) URL")).toBe(url);
  });

  it.each(["ftp://host", "not a url", "redis://:s3cret@@"])(
    "URL %j is refused without echoing it",
    (text) => {
      const error = refusal(() => parseServiceUrl(text, "an http(s) URL"));
      expect(error.message).toBe("expected an http(s) URL, got a value that is not one");
    },
  );
});

describe("ValueError", () => {
  it("serialises with its name, code and option", () => {
    expect(JSON.parse(JSON.stringify(refusal(() => parsePort("x", "--port"))))).toEqual({
      name: "ValueError",
      code: "invalid_value",
      message: '--port: expected a port number from 0 to 65535, got "x"',
      retryable: false,
      option: "--port",
    });
  });
});
