/**
 * The KIE client against the project's simulator, over real HTTP, for both API flavours and
 * every row of the error table.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createKieClient, type KieClient } from "../../src/kie/index.js";
import type { ApiFlavor, SubmitRequest } from "../../src/kie/types.js";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorHandle, SimulatorOptions } from "../../src/simulator/types.js";
import { kieErrorOf, TEST_API_KEY } from "../helpers/kie-errors.js";

const REQUEST: SubmitRequest = {
  prompt: "A dragon flying over ancient mountains, digital art style",
  image_size: "landscape_16_9",
  num_inference_steps: 30,
  guidance_scale: 7.5,
  seed: 42,
  acceleration_level: "regular",
  output_format: "jpg",
  safety_check: false,
};

const FAST: SimulatorOptions = { apiKey: TEST_API_KEY, recordLagMs: 0, randomSeed: 7 };

/** A simulator and a client for one test; both closed after it. */
const opened: Array<{ close(): Promise<void> }> = [];
async function setup(flavor: ApiFlavor, options: SimulatorOptions = FAST, apiKey = TEST_API_KEY) {
  const sim = await startSimulator(options);
  const client = createKieClient({ baseUrl: sim.url, apiKey, flavor });
  opened.push(client, sim);
  return { sim, client };
}
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

describe.each(["qwen", "jobs"] as const)("the %s flavour", (flavor) => {
  it("submits, reads the task until it succeeds, refreshes its URL and reads the balance", async () => {
    const { sim, client } = await setup(flavor, { ...FAST, credits: 1000, reportCreditsConsumed: true });
    const taskId = await client.submit({ ...REQUEST, callBackUrl: undefined });

    const created = sim.task(taskId);
    expect(created?.flavor).toBe(flavor);
    // Whatever the flavour's names on the wire, the simulator read the same parameters.
    expect(created?.params).toMatchObject({
      prompt: REQUEST.prompt,
      acceleration_level: "regular",
      output_format: "jpg",
      safety_check: false,
      seed: 42,
    });

    const running = await client.getTask(taskId);
    expect(running).toMatchObject({ taskId, status: "generating", imageUrls: [] });

    sim.completeAll();
    const done = await client.getTask(taskId);
    expect(done.status).toBe("success");
    expect(done.imageUrls.length).toBeGreaterThan(0);
    expect(done.createdAt).toBeTypeOf("number");
    expect(done.completedAt).toBeGreaterThanOrEqual(done.createdAt!);
    if (flavor === "jobs") expect(done.creditsConsumed).toBe(created?.credits);

    const direct = await client.refreshDownloadUrl(done.imageUrls[0]!);
    expect(direct).toMatch(/^http/);
    expect(await client.getCredits()).toBe(1000 - (created?.credits ?? 0));
  });

  it.each([
    ["fail", "2", "501"],
    ["creation_failed", "3", "500"],
  ] as const)("a task that ends %s is failed with its code", async (outcome, qwenCode, jobsCode) => {
    const { sim, client } = await setup(flavor);
    sim.setNextOutcome(outcome);
    const taskId = await client.submit(REQUEST);
    sim.completeAll();
    const record = await client.getTask(taskId);
    expect(record).toMatchObject({ taskId, status: "failed", imageUrls: [] });
    expect(record.failCode).toBe(flavor === "qwen" ? qwenCode : jobsCode);
    expect(record.failMessage).toBeTruthy();
  });

  it("a task read during KIE's lag after create is record_not_found, retryable", async () => {
    const { client } = await setup(flavor, { ...FAST, recordLagMs: 3_600_000 });
    const taskId = await client.submit(REQUEST);
    const error = await kieErrorOf(client.getTask(taskId));
    expect(error).toMatchObject({ code: "record_not_found", retryable: true, apiCode: 422 });
  });

  it("an unknown task id, with characters that need encoding, is record_not_found", async () => {
    const { client } = await setup(flavor);
    const error = await kieErrorOf(client.getTask("no such/task?&id=1 #"));
    expect(error.code).toBe("record_not_found");
  });
});

const CODE_ROWS = [
  { apiCode: 400, code: "bad_request", retryable: false, fleetEffect: undefined },
  { apiCode: 401, code: "unauthorized", retryable: true, fleetEffect: "bad-key" },
  { apiCode: 402, code: "insufficient_credits", retryable: true, fleetEffect: "out-of-credits" },
  { apiCode: 404, code: "not_found", retryable: false, fleetEffect: undefined },
  { apiCode: 422, code: "validation", retryable: false, fleetEffect: undefined },
  { apiCode: 429, code: "rate_limited", retryable: true, fleetEffect: "rate-limited" },
  { apiCode: 433, code: "usage_cap", retryable: true, fleetEffect: "usage-cap" },
  { apiCode: 455, code: "maintenance", retryable: true, fleetEffect: "maintenance" },
  { apiCode: 500, code: "server_error", retryable: true, fleetEffect: undefined },
  { apiCode: 501, code: "generation_failed", retryable: false, fleetEffect: undefined },
  { apiCode: 505, code: "feature_disabled", retryable: false, fleetEffect: undefined },
  { apiCode: 599, code: "unknown_code", retryable: true, fleetEffect: undefined },
] as const;

describe("the error table, through the simulator's injected faults", () => {
  let sim: SimulatorHandle;
  let client: KieClient;
  beforeAll(async () => {
    sim = await startSimulator({ ...FAST, rateLimit: { limit: 10_000, windowMs: 10_000 } });
    client = createKieClient({ baseUrl: sim.url, apiKey: TEST_API_KEY, flavor: "jobs" });
  });
  afterAll(async () => {
    await client?.close();
    await sim?.close();
  });

  it.each(CODE_ROWS)("body code $apiCode on submit -> $code", async (row) => {
    sim.injectFaults("submit", { kind: "code", code: row.apiCode });
    const error = await kieErrorOf(client.submit(REQUEST));
    expect(error).toMatchObject({
      code: row.code,
      retryable: row.retryable,
      fleetEffect: row.fleetEffect,
      apiCode: row.apiCode,
      maybeCreated: false,
      endpoint: "POST /api/v1/jobs/createTask",
    });
  });

  it.each(CODE_ROWS)("body code $apiCode on a status call -> $code", async (row) => {
    sim.injectFaults("status", { kind: "code", code: row.apiCode });
    const error = await kieErrorOf(client.getTask("any"));
    expect(error).toMatchObject({ code: row.code, retryable: row.retryable, fleetEffect: row.fleetEffect });
  });

  it("422 recordInfo is null on a status call is record_not_found", async () => {
    sim.injectFaults("status", { kind: "code", code: 422, msg: "recordInfo is null" });
    const error = await kieErrorOf(client.getTask("any"));
    expect(error).toMatchObject({ code: "record_not_found", retryable: true });
  });

  it("a body code sent with a real HTTP status reads the same", async () => {
    sim.injectFaults("credit", { kind: "code", code: 401, httpStatus: 401 });
    const error = await kieErrorOf(client.getCredits());
    expect(error).toMatchObject({ code: "unauthorized", httpStatus: 401, fleetEffect: "bad-key" });
  });

  it.each([
    [502, true],
    [503, false],
    [504, true],
  ])("HTTP %i from a gateway on submit: retryable, maybeCreated %s", async (status, maybeCreated) => {
    sim.injectFaults("submit", { kind: "http", status });
    const error = await kieErrorOf(client.submit(REQUEST));
    expect(error).toMatchObject({ code: "http_error", httpStatus: status, retryable: true, maybeCreated });
  });

  it.each([502, 503, 504])("HTTP %i on a status call never claims a created task", async (status) => {
    sim.injectFaults("status", { kind: "http", status });
    const error = await kieErrorOf(client.getTask("any"));
    expect(error).toMatchObject({ code: "http_error", retryable: true, maybeCreated: false });
  });

  it("a reset after the task was created is a retryable network error that may have created it", async () => {
    const before = sim.stats().creates;
    sim.injectFaults("submit", { kind: "reset", afterCreate: true });
    const error = await kieErrorOf(client.submit(REQUEST));
    expect(error).toMatchObject({ code: "network", retryable: true, maybeCreated: true });
    expect(sim.stats().creates).toBe(before + 1);
  });

  it("a reset before the create still reads maybeCreated: the client cannot tell the two apart", async () => {
    const before = sim.stats().creates;
    sim.injectFaults("submit", { kind: "reset" });
    const error = await kieErrorOf(client.submit(REQUEST));
    expect(error).toMatchObject({ code: "network", retryable: true, maybeCreated: true });
    expect(sim.stats().creates).toBe(before);
  });

  it("a reset on a status call is retryable and creates nothing", async () => {
    sim.injectFaults("status", { kind: "reset" });
    const error = await kieErrorOf(client.getTask("any"));
    expect(error).toMatchObject({ code: "network", retryable: true, maybeCreated: false });
  });

  it("an answer slower than the headers timeout on submit is a timeout that may have created", async () => {
    const impatient = createKieClient({
      baseUrl: sim.url,
      apiKey: TEST_API_KEY,
      flavor: "jobs",
      headersTimeoutMs: 200,
    });
    opened.push(impatient);
    sim.injectFaults("submit", { kind: "delay", ms: 3_000 });
    const error = await kieErrorOf(impatient.submit(REQUEST));
    expect(error).toMatchObject({ code: "timeout", retryable: true, maybeCreated: true });
  });

  it("a call aborted by the caller rejects with the abort reason, not a KieError", async () => {
    // Its own simulator: should the abort win before the request leaves, the queued hang dies with it.
    const own = await setup("jobs");
    own.sim.injectFaults("status", { kind: "hang" });
    const controller = new AbortController();
    const pending = own.client.getTask("any", controller.signal);
    const reason = new Error("shutting down");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("an already aborted signal sends nothing", async () => {
    const before = sim.stats().creates;
    const reason = new Error("too late");
    await expect(client.submit(REQUEST, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(sim.stats().creates).toBe(before);
  });

  it("a non-KIE url for a download link is a validation error", async () => {
    const error = await kieErrorOf(client.refreshDownloadUrl("https://example.com/elsewhere.png"));
    expect(error).toMatchObject({ code: "validation", apiCode: 422, retryable: false });
  });
});

describe("fleet-wide conditions from the simulator's own state", () => {
  it("a wrong key is unauthorized with the bad-key fleet effect, and neither key is printed", async () => {
    const wrongKey = "sk-kie-wrong-key-5e6f7a8b9c";
    const { client } = await setup("qwen", FAST, wrongKey);
    const error = await kieErrorOf(client.submit(REQUEST), wrongKey);
    expect(error).toMatchObject({ code: "unauthorized", fleetEffect: "bad-key" });
    await kieErrorOf(client.getCredits(), TEST_API_KEY);
  });

  it("a missing key is unauthorized", async () => {
    const { client } = await setup("jobs", FAST, "");
    const error = await kieErrorOf(client.getCredits());
    expect(error).toMatchObject({ code: "unauthorized", fleetEffect: "bad-key" });
  });

  it("no credits: submit is insufficient_credits and the balance reads 0", async () => {
    const { sim, client } = await setup("qwen");
    sim.setCredits(0);
    const error = await kieErrorOf(client.submit(REQUEST));
    expect(error).toMatchObject({ code: "insufficient_credits", fleetEffect: "out-of-credits" });
    expect(await client.getCredits()).toBe(0);
  });

  it("maintenance is retryable with the maintenance fleet effect", async () => {
    const { sim, client } = await setup("jobs");
    sim.setMaintenance(true);
    const error = await kieErrorOf(client.submit(REQUEST));
    expect(error).toMatchObject({ code: "maintenance", retryable: true, fleetEffect: "maintenance" });
    sim.setMaintenance(false);
    await expect(client.submit(REQUEST)).resolves.toBeTypeOf("string");
  });

  it.each([false, true])(
    "over the rate limit (HTTP 429: %s) creates nothing and rate-limits the fleet",
    async (http) => {
      const { sim, client } = await setup("qwen", {
        ...FAST,
        rateLimit: { limit: 2, windowMs: 3_600_000 },
        rateLimitHttpStatus: http,
      });
      await client.submit(REQUEST);
      await client.submit(REQUEST);
      const error = await kieErrorOf(client.submit(REQUEST));
      expect(error).toMatchObject({ code: "rate_limited", fleetEffect: "rate-limited", maybeCreated: false });
      expect(error.httpStatus).toBe(http ? 429 : 200);
      expect(sim.stats()).toMatchObject({ creates: 2, rateLimited: 1 });
    },
  );
});

describe("random transient faults", () => {
  it("every fault the simulator picks at random reads as retryable", async () => {
    const { sim, client } = await setup("jobs", { ...FAST, faultRate: 1, randomSeed: 11 });
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 8 }, () => client.getCredits()),
      ...Array.from({ length: 8 }, () => client.getTask("any")),
    ]);
    const errors = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason] : []));
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) {
      // A status call meeting no fault answers "recordInfo is null" for an unknown task: retryable too.
      expect(error).toMatchObject({ name: "KieError", retryable: true, maybeCreated: false });
    }
    expect(Object.keys(sim.stats().faults).length).toBeGreaterThan(1);
  });
});
