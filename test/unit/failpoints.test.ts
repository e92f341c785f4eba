import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import {
  armFailpoints,
  FAILPOINT_EXIT_CODE,
  FAILPOINTS,
  FailpointError,
  failpoint,
  failpointStream,
  parseFailpoints,
} from "../../src/core/failpoints.js";

afterEach(() => {
  armFailpoints(undefined);
  vi.restoreAllMocks();
});

describe("parseFailpoints", () => {
  it("reads exit, throw and sleep, with an optional hit number", () => {
    const rules = parseFailpoints(
      "submit.after-create=exit@1, poll.after-fail=throw,archive.during-upload=sleep(2s)@3",
    );
    expect(Object.fromEntries(rules)).toEqual({
      "submit.after-create": { action: { kind: "exit" }, onHit: 1 },
      "poll.after-fail": { action: { kind: "throw" } },
      "archive.during-upload": { action: { kind: "sleep", ms: 2_000 }, onHit: 3 },
    });
  });

  it("arms nothing for empty text", () => {
    expect(parseFailpoints("").size).toBe(0);
    expect(parseFailpoints(" , ").size).toBe(0);
  });

  it.each([
    [
      "submit.after-creat=exit",
      /Unknown failpoint "submit.after-creat": expected one of submit.before-create/,
    ],
    ["submit.after-create", /expected name=exit\|throw\|sleep/],
    ["submit.after-create=kill", /expected name=exit\|throw\|sleep/],
    ["submit.after-create=sleep(soon)", /sleep takes a duration/],
    ["submit.after-create=exit@0", /@n counts from 1/],
    ["submit.after-create=exit,submit.after-create=throw", /given twice/],
  ])("refuses %j", (input, message) => {
    expect(() => parseFailpoints(input)).toThrow(message);
  });

  it("a typo in KIE_FAILPOINTS is an error at start, naming the variable", () => {
    expect(() => loadConfig({ KIE_FAILPOINTS: "submit.afer-create=exit" })).toThrow(
      /KIE_FAILPOINTS.*Unknown failpoint/s,
    );
    expect(loadConfig({ KIE_FAILPOINTS: "poll.after-fail=exit@1" }).KIE_FAILPOINTS?.size).toBe(1);
    expect(loadConfig({}).KIE_FAILPOINTS).toBeUndefined();
  });

  it("every name is stage.point in lower case", () => {
    for (const name of FAILPOINTS) expect(name).toMatch(/^(submit|poll|archive)\.[a-z-]+$/);
  });
});

describe("failpoint", () => {
  it("does nothing when not armed", () => {
    for (const name of FAILPOINTS) expect(failpoint(name)).toBeUndefined();
  });

  it("throw throws a FailpointError on every hit; other points stay quiet", () => {
    armFailpoints(parseFailpoints("poll.after-fail=throw"));
    expect(() => failpoint("poll.after-fail")).toThrow(FailpointError);
    expect(() => failpoint("poll.after-fail")).toThrow(/poll.after-fail/);
    expect(failpoint("poll.after-archiving")).toBeUndefined();
  });

  it("@n fires on the n-th hit only", () => {
    armFailpoints(parseFailpoints("submit.after-record=throw@2"));
    expect(failpoint("submit.after-record")).toBeUndefined();
    expect(() => failpoint("submit.after-record")).toThrow(FailpointError);
    expect(failpoint("submit.after-record")).toBeUndefined();
  });

  it("exit ends the process with 137 on the spot, saying which point", () => {
    const exit = vi.spyOn(process, "exit").mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    armFailpoints(parseFailpoints("archive.after-sidecar=exit@1"));
    expect(() => failpoint("archive.after-sidecar")).toThrow(`exit ${FAILPOINT_EXIT_CODE}`);
    expect(exit).toHaveBeenCalledOnce();
    expect(failpoint("archive.after-sidecar")).toBeUndefined();
  });

  it("sleep returns a promise that resolves after the stall", async () => {
    vi.useFakeTimers();
    try {
      armFailpoints(parseFailpoints("submit.before-create=sleep(5s)"));
      let resolved = false;
      const stall = failpoint("submit.before-create")?.then(() => {
        resolved = true;
      });
      expect(stall).toBeDefined();
      await vi.advanceTimersByTimeAsync(4_999);
      expect(resolved).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await stall;
      expect(resolved).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it("arming logs at warn which points are armed", () => {
    const warn = vi.fn();
    armFailpoints(parseFailpoints("poll.after-fail=exit@1"), { warn } as never);
    expect(warn).toHaveBeenCalledWith(
      { failpoints: ["poll.after-fail"] },
      expect.stringMatching(/KIE_FAILPOINTS/),
    );
    warn.mockClear();
    armFailpoints(undefined, { warn } as never);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe("failpointStream", () => {
  it("is the stream itself when its point is not armed", () => {
    const stream = Readable.from(["a"]);
    expect(failpointStream("archive.during-upload", stream)).toBe(stream);
  });

  it("armed with throw, fails the transfer at its first chunk and destroys the source", async () => {
    armFailpoints(parseFailpoints("archive.during-upload=throw"));
    const source = Readable.from(["first", "second"]);
    await expect(text(failpointStream("archive.during-upload", source))).rejects.toThrow(FailpointError);
    expect(source.destroyed).toBe(true);
  });

  it("armed with a hit that does not fire, passes every byte", async () => {
    armFailpoints(parseFailpoints("archive.during-upload=throw@2"));
    expect(await text(failpointStream("archive.during-upload", Readable.from(["ab", "cd"])))).toBe("abcd");
  });
});
