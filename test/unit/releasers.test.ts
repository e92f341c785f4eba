import { describe, expect, it } from "vitest";
import { type ReleaseFailure, Releasers } from "../../src/app/releasers.js";
import { redactUrl, urlSecrets } from "../../src/core/redact-url.js";

describe("Releasers", () => {
  it("closes the rest in reverse order when one throws, and reports the failure", async () => {
    const closed: string[] = [];
    const told: ReleaseFailure[] = [];
    const releasers = new Releasers({ onError: (failure) => told.push(failure) });
    releasers.push("connection", () => {
      closed.push("connection");
    });
    releasers.push("store", async () => {
      closed.push("store");
      throw new Error("disk gone");
    });
    releasers.push("server", async () => {
      closed.push("server");
    });

    const error = await releasers.closeAll().then(
      () => undefined,
      (err: unknown) => err,
    );

    expect(closed).toEqual(["server", "store", "connection"]);
    expect(error).toBeInstanceOf(AggregateError);
    expect((error as AggregateError).errors.map((e: Error) => e.message)).toEqual(["disk gone"]);
    expect((error as AggregateError).message).toContain("store (disk gone)");
    expect(told.map((f) => f.name)).toEqual(["store"]);
  });

  it("aggregates every failure and still runs everything", async () => {
    const closed: string[] = [];
    const releasers = new Releasers();
    for (const name of ["a", "b", "c"]) {
      releasers.push(name, () => {
        closed.push(name);
        if (name !== "b") throw new Error(`${name} failed`);
      });
    }
    await expect(releasers.closeAll()).rejects.toMatchObject({
      errors: [new Error("c failed"), new Error("a failed")],
    });
    expect(closed).toEqual(["c", "b", "a"]);
  });

  it("runs each releaser once, however often it is closed, and refuses late additions", async () => {
    let runs = 0;
    const releasers = new Releasers();
    releasers.push("once", () => {
      runs += 1;
    });
    const first = releasers.closeAll();
    expect(releasers.closeAll()).toBe(first);
    await releasers[Symbol.asyncDispose]();
    expect(runs).toBe(1);
    expect(() => releasers.push("late", () => undefined)).toThrow(/already closing/);
  });
});

describe("redactUrl", () => {
  it.each([
    ["redis://:hunter22@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"],
    ["https://user:pw@hooks.example.com/", "https://user:***@hooks.example.com"],
    ["not a url //user:pw@host", "not a url //***@host"],
    // Presigned URLs: their signatures and credentials, not their other parameters.
    [
      "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc&X-Amz-Expires=60",
      "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60",
    ],
    [
      "https://a.blob.core.windows.net/c/k.png?sv=1&sig=abc",
      "https://a.blob.core.windows.net/c/k.png?sv=1&sig=***",
    ],
    [
      "https://storage.googleapis.com/b/k.png?X-Goog-Signature=abc",
      "https://storage.googleapis.com/b/k.png?X-Goog-Signature=***",
    ],
  ])("%s -> %s", (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it("names the secrets a URL carries, decoded", () => {
    expect(urlSecrets("redis://u:s%40cret@h:1/0?token=abc&db=2")).toEqual(["s@cret", "abc"]);
    expect(urlSecrets("redis://127.0.0.1:6379")).toEqual([]);
  });
});
