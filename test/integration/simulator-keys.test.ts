/**
 * The simulator with several keys: only the given keys are accepted, each account has one create
 * window (keys of one account share it), a capped key answers 433 while the others go on (also
 * when capped over /__sim/control), and a task is unknown to another account's key.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type SimulatorHandle, startSimulator } from "../../src/simulator/index.js";
import { until } from "../helpers/worker-harness.js";
import { call } from "./simulator-helpers.js";

let sim: SimulatorHandle | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const create = (s: SimulatorHandle, key: string, prompt = "a fox") =>
  call(s, "POST", "/api/v1/qwen/generate", { body: { prompt }, key });

describe("simulator keys", () => {
  it("accepts only its keys; keys of one account share one window, another account has its own", async () => {
    sim = await startSimulator({
      apiKeys: ["k-a1", "k-a2", "k-b"],
      accounts: { "k-a1": "a", "k-a2": "a" },
      rateLimit: { limit: 2, windowMs: 60_000 },
      recordLagMs: 0,
    });
    expect((await create(sim, "k-stranger")).body.code).toBe(401);
    expect((await create(sim, "k-a1")).body.code).toBe(200);
    expect((await create(sim, "k-a2")).body.code).toBe(200);
    // Account a has used its window, whichever of its keys asks.
    expect((await create(sim, "k-a1")).body.code).toBe(429);
    expect((await create(sim, "k-a2")).body.code).toBe(429);
    expect((await create(sim, "k-b")).body.code).toBe(200);
    expect(sim.stats()).toMatchObject({
      creates: 3,
      rateLimited: 2,
      createsByKey: { "k-a1": 1, "k-a2": 1, "k-b": 1 },
    });
  });

  it("a capped key answers 433 and creates nothing until uncapped; the others go on", async () => {
    sim = await startSimulator({ apiKeys: ["k1", "k2"], recordLagMs: 0 });
    sim.capKey("k1", true);
    expect((await create(sim, "k1")).body.code).toBe(433);
    expect((await create(sim, "k2")).body.code).toBe(200);
    sim.capKey("k1", false);
    expect((await create(sim, "k1")).body.code).toBe(200);
    const control = await call(sim, "POST", "/__sim/control", {
      body: { capKey: { key: "k2", capped: true } },
    });
    expect(control.body.code).toBe(200);
    expect((await create(sim, "k2")).body.code).toBe(433);
    expect(sim.stats().createsByKey).toEqual({ k1: 1, k2: 1 });
  });

  it("a task is unknown to another account's key, known to every key of its own account", async () => {
    sim = await startSimulator({
      apiKeys: ["k-a1", "k-a2", "k-b"],
      accounts: { "k-a1": "a", "k-a2": "a" },
      recordLagMs: 0,
    });
    const taskId = (await create(sim, "k-a1")).body.data.taskId as string;
    const status = (key: string) => call(sim!, "GET", `/api/v1/qwen/record-info?taskId=${taskId}`, { key });
    expect((await status("k-a1")).body.code).toBe(200);
    expect((await status("k-a2")).body.code).toBe(200);
    expect((await status("k-b")).body).toMatchObject({ code: 422, msg: "recordInfo is null" });
  });

  it("a result's fresh download URL is refused to another account's key, given to its own account's", async () => {
    sim = await startSimulator({
      apiKeys: ["k-a1", "k-a2", "k-b"],
      accounts: { "k-a1": "a", "k-a2": "a" },
      recordLagMs: 0,
      latency: { minMs: 0, maxMs: 0 },
    });
    const taskId = (await create(sim, "k-a1")).body.data.taskId as string;
    const url = await until("the task succeeded", async () => {
      const record = await call(sim!, "GET", `/api/v1/qwen/record-info?taskId=${taskId}`, { key: "k-a1" });
      return (record.body.data?.imageUrl as string | null) ?? undefined;
    });
    expect(url).toContain(taskId);
    const refresh = (key: string) =>
      call(sim!, "POST", "/api/v1/common/download-url", { body: { url }, key });
    expect((await refresh("k-a2")).body.code).toBe(200);
    expect((await refresh("k-b")).body).toMatchObject({ code: 422, msg: "file not found" });
    expect((await refresh("k-a1")).body.code).toBe(200);
  });
});
