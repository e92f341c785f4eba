import { describe, expect, it } from "vitest";
import { canonicalJson, parseSimulatorFlags, requestHash } from "../../src/simulator/index.js";

describe("parseSimulatorFlags", () => {
  it("turns every flag, given as commander strings, into SimulatorOptions", () => {
    expect(
      parseSimulatorFlags({
        port: "8090",
        apiKey: "k",
        rateLimit: "20/10s",
        rateLimitHttp: true,
        latency: "30s-8m",
        timeScale: "60",
        recordLag: "2s",
        failureRate: "0.1",
        creationFailureRate: "0.5",
        faultRate: "0.05",
        credits: "500",
        fileTtl: "14d",
        imagePad: "25MB",
        imagesPerTask: "2",
        hmacKey: "secret",
        seed: "7",
        publicHost: "localhost",
      }),
    ).toEqual({
      port: 8090,
      apiKey: "k",
      rateLimit: { limit: 20, windowMs: 10_000 },
      rateLimitHttpStatus: true,
      latency: { minMs: 30_000, maxMs: 480_000 },
      timeScale: 60,
      recordLagMs: 2000,
      failureRate: 0.1,
      creationFailureRate: 0.5,
      faultRate: 0.05,
      credits: 500,
      fileTtlMs: 1_209_600_000,
      imagePadBytes: 25_000_000,
      imagesPerTask: 2,
      webhookHmacKey: "secret",
      randomSeed: 7,
      publicHost: "localhost",
    });
  });

  it("leaves unset flags to the simulator's defaults", () => {
    expect(parseSimulatorFlags({})).toEqual({});
  });

  it("reads one latency as a fixed latency", () => {
    expect(parseSimulatorFlags({ latency: "5s" }).latency).toEqual({ minMs: 5000, maxMs: 5000 });
  });

  it.each([
    [{ port: "http" }, /--port "http"/],
    [{ port: "70000" }, /--port "70000"/],
    [{ timeScale: "0" }, /--time-scale "0"/],
    [{ failureRate: "1.5" }, /--failure-rate "1.5"/],
    [{ faultRate: "" }, /--fault-rate ""/],
    [{ credits: "-3" }, /--credits "-3"/],
    [{ seed: "1.5" }, /--seed "1.5"/],
    [{ latency: "6s-2s" }, /--latency "6s-2s"/],
    [{ latency: "fast" }, /--latency.*"fast"/],
    [{ rateLimit: "lots" }, /--rate-limit.*"lots"/],
    [{ fileTtl: "forever" }, /--file-ttl.*"forever"/],
    [{ imagePad: "huge" }, /--image-pad.*"huge"/],
    [{ apiKey: " " }, /--api-key/],
  ])("rejects %j with a message naming the flag and value", (flags, message) => {
    expect(() => parseSimulatorFlags(flags)).toThrow(message);
  });
});

describe("requestHash", () => {
  it("does not depend on key order", () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 4, e: 5 }] } })).toBe(
      '{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1}',
    );
    expect(requestHash({ prompt: "p", seed: 1 })).toBe(requestHash({ seed: 1, prompt: "p" }));
    expect(requestHash({ prompt: "p", seed: 1 })).not.toBe(requestHash({ prompt: "p", seed: 2 }));
  });
});
