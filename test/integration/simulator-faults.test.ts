import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { requestHash, type SimulatorHandle, startSimulator } from "../../src/simulator/index.js";
import { call, qwenStatus, submitQwen } from "./simulator-helpers.js";

const FAST = { timeScale: 10_000, recordLagMs: 0 };

let sim: SimulatorHandle | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const create = (s: SimulatorHandle, prompt: string, key?: string) =>
  call(s, "POST", "/api/v1/qwen/generate", { body: { prompt }, ...(key ? { key } : {}) });

describe("rate window", () => {
  it("rejects the create over the sliding window with 429, creates and charges nothing, and frees up as it slides", async () => {
    sim = await startSimulator({ ...FAST, rateLimit: { limit: 5, windowMs: 500 } });
    for (let i = 0; i < 5; i++) expect((await create(sim, `p${i}`)).body.code).toBe(200);
    const rejected = await create(sim, "p5");
    expect(rejected.status).toBe(200);
    expect(rejected.body.code).toBe(429);
    expect(sim.stats()).toMatchObject({ creates: 5, rateLimited: 1, creditsCharged: 40 });
    // Another key has its own window.
    expect((await create(sim, "other", "second-key")).body.code).toBe(200);

    // The window is real time: once the fifth create has slid out, five more fit and no sixth.
    // This wait is the behaviour under test (the simulator's window is real time by design: see
    // src/simulator/rate-window.ts), not a pause to let things settle.
    const fifth = sim.stats().createTimes[4]!;
    await new Promise((resolve) => setTimeout(resolve, fifth + 510 - Date.now()));
    for (let i = 6; i < 11; i++) expect((await create(sim, `p${i}`)).body.code).toBe(200);
    expect((await create(sim, "p11")).body.code).toBe(429);
    expect(sim.stats()).toMatchObject({ creates: 11, rateLimited: 2 });
  });

  it("answers HTTP 429 when rateLimitHttpStatus is set", async () => {
    sim = await startSimulator({
      ...FAST,
      rateLimit: { limit: 1, windowMs: 60_000 },
      rateLimitHttpStatus: true,
    });
    expect((await create(sim, "a")).status).toBe(200);
    const rejected = await create(sim, "b");
    expect(rejected.status).toBe(429);
    expect(rejected.body.code).toBe(429);
  });

  it("is never scaled by timeScale", async () => {
    sim = await startSimulator({ timeScale: 1_000_000, rateLimit: { limit: 2, windowMs: 10_000 } });
    await create(sim, "a");
    await create(sim, "b");
    expect((await create(sim, "c")).body.code).toBe(429);
  });
});

describe("injected faults", () => {
  it("a reset after create leaves the client with a socket error but the task created and charged", async () => {
    sim = await startSimulator(FAST);
    sim.injectFaults("submit", { kind: "reset", afterCreate: true });
    await expect(create(sim, "maybe created")).rejects.toThrow();
    expect(sim.stats()).toMatchObject({ creates: 1, creditsCharged: 8, faults: { reset: 1 } });
    expect(sim.stats().createsByRequestHash[requestHash({ prompt: "maybe created" })]).toBe(1);
  });

  it("a plain reset, a code and an HTTP fault create nothing; faults are used in order, then calls answer normally", async () => {
    sim = await startSimulator(FAST);
    sim.injectFaults(
      "submit",
      { kind: "reset" },
      { kind: "code", code: 500 },
      { kind: "http", status: 503 },
      { kind: "code", code: 433, msg: "hourly cap", httpStatus: 200 },
    );
    await expect(create(sim, "a")).rejects.toThrow();
    expect(await create(sim, "b")).toMatchObject({ status: 200, body: { code: 500 } });
    const proxy = await create(sim, "c");
    expect(proxy.status).toBe(503);
    expect(typeof proxy.body).toBe("string");
    expect((await create(sim, "d")).body).toEqual({ code: 433, msg: "hourly cap" });
    expect(sim.stats()).toMatchObject({ creates: 0, faults: { reset: 1, code: 2, http: 1 } });
    expect((await create(sim, "e")).body.code).toBe(200);
  });

  it("faults on one endpoint leave the others alone", async () => {
    sim = await startSimulator(FAST);
    const taskId = await submitQwen(sim, { prompt: "p" });
    sim.injectFaults("status", { kind: "code", code: 500, httpStatus: 502 });
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body.code).toBe(200);
    expect((await qwenStatus(sim, taskId)).status).toBe(502);
    expect((await qwenStatus(sim, taskId)).body.code).toBe(200);
  });

  it("a delay answers normally after the delay", async () => {
    sim = await startSimulator(FAST);
    sim.injectFaults("credit", { kind: "delay", ms: 150 });
    const started = Date.now();
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body.code).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("a hang never answers, and close() still returns promptly", async () => {
    sim = await startSimulator(FAST);
    sim.injectFaults("credit", { kind: "hang" }, { kind: "delay", ms: 60_000 });
    const ask = () =>
      request(`${sim!.url}/api/v1/chat/credit`, { headers: { authorization: "Bearer k" } }).then(
        () => "answered",
        () => "socket closed",
      );
    const hung = ask();
    const delayed = ask();
    // Both calls have reached their fault, and the simulator has answered a later call since.
    await expect.poll(() => sim!.stats().faults).toEqual({ hang: 1, delay: 1 });
    expect((await call(sim, "GET", "/__sim/stats")).status).toBe(200);
    const outcome = await Promise.race([hung, Promise.resolve("waiting")]);
    expect(outcome).toBe("waiting");
    const started = Date.now();
    await sim.close();
    sim = undefined;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await hung).toBe("socket closed");
    expect(await delayed).toBe("socket closed");
  });

  it("faultRate 1 meets every call with a transient fault, never a terminal one", async () => {
    sim = await startSimulator({ ...FAST, faultRate: 1, randomSeed: 3 });
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        call(sim!, "GET", "/api/v1/chat/credit").then(
          (answer) => (answer.status === 200 ? `code ${answer.body.code}` : `http ${answer.status}`),
          () => "reset",
        ),
      ),
    );
    for (const outcome of answers)
      expect(["code 500", "code 200", "http 502", "http 503", "reset"]).toContain(outcome);
    const faults = sim.stats().faults;
    expect(Object.values(faults).reduce((sum, n) => sum + n, 0)).toBe(12);
    expect(Object.keys(faults).every((kind) => ["code", "http", "reset", "delay"].includes(kind))).toBe(true);
  });
});
