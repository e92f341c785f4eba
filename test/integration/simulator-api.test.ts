import { afterEach, describe, expect, it } from "vitest";
import { requestHash, type SimulatorHandle, startSimulator } from "../../src/simulator/index.js";
import {
  call,
  decodePng,
  download,
  jobsStatus,
  jpegMarkers,
  KEY,
  qwenStatus,
  submitQwen,
  until,
} from "./simulator-helpers.js";

/** Simulated: 10 s lag and 20-30 s generations; at x100 that is 100 ms, then 200-300 ms. */
const SLOW_ENOUGH_TO_WATCH = {
  timeScale: 100,
  recordLagMs: 10_000,
  latency: { minMs: 20_000, maxMs: 30_000 },
};
/** Everything done within a few real ms. */
const FAST = { timeScale: 10_000, recordLagMs: 0 };

let sim: SimulatorHandle | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("qwen flavour", () => {
  it("runs a task from create through the record lag and generating to a PNG result", async () => {
    sim = await startSimulator({ ...SLOW_ENOUGH_TO_WATCH, randomSeed: 1 });
    const created = await call(sim, "POST", "/api/v1/qwen/generate", {
      body: { prompt: "a red fox", seed: 42 },
    });
    expect(created).toMatchObject({ status: 200, body: { code: 200, msg: "success" } });
    const taskId: string = created.body.data.taskId;
    expect(taskId).toMatch(/^qwen_task_/);

    expect((await qwenStatus(sim, taskId)).body).toEqual({ code: 422, msg: "recordInfo is null" });
    const firstSeen = await until(
      () => qwenStatus(sim!, taskId),
      (answer) => answer.body.code === 200,
    );
    expect(firstSeen.body.data).toMatchObject({ taskId, successFlag: 0, imageUrl: null, completeTime: null });

    const done = await until(
      () => qwenStatus(sim!, taskId),
      (answer) => answer.body.data.successFlag !== 0,
    );
    const record = done.body.data;
    expect(record.successFlag).toBe(1);
    expect(record.imageUrl).toBe(`${sim.url}/files/${taskId}/0.png`);
    expect(Date.parse(record.completeTime)).toBeGreaterThan(Date.parse(record.createTime));
    expect(new Date(record.createTime).toISOString()).toBe(record.createTime);

    const image = await download(record.imageUrl);
    expect(image.status).toBe(200);
    expect(image.type).toBe("image/png");
    const png = decodePng(image.bytes);
    expect([png.width, png.height]).toEqual([384, 288]); // landscape_4_3, the default

    const stats = sim.stats();
    expect(stats).toMatchObject({ creates: 1, creditsCharged: 8, downloads: 1, maxInFlight: 1, inFlight: 0 });
    expect(stats.createsByRequestHash).toEqual({ [requestHash({ prompt: "a red fox", seed: 42 })]: 1 });
  });

  it("reports failures as successFlag 2 and creation failures as successFlag 3", async () => {
    sim = await startSimulator(FAST);
    sim.setNextOutcome("fail");
    const failed = await submitQwen(sim, { prompt: "x" });
    sim.setNextOutcome("creation_failed");
    const notCreated = await submitQwen(sim, { prompt: "y" });
    sim.setNextOutcome(undefined);
    const fine = await submitQwen(sim, { prompt: "z" });
    const finished = (id: string) =>
      until(
        () => qwenStatus(sim!, id),
        (a) => a.body.data?.successFlag > 0,
      );

    expect((await finished(failed)).body.data).toMatchObject({
      successFlag: 2,
      imageUrl: null,
      errorMessage: expect.any(String),
    });
    expect((await finished(notCreated)).body.data).toMatchObject({
      successFlag: 3,
      errorMessage: expect.any(String),
    });
    expect((await finished(fine)).body.data.successFlag).toBe(1);
  });

  it("fails the fraction of tasks set by failureRate, repeatably for one randomSeed", async () => {
    const outcomes = async () => {
      const s = await startSimulator({ ...FAST, failureRate: 0.5, creationFailureRate: 0.5, randomSeed: 7 });
      try {
        const ids = [];
        for (let i = 0; i < 12; i++) ids.push(await submitQwen(s, { prompt: `p${i}` }));
        s.completeAll();
        return ids.map((id) => s.task(id)!.state);
      } finally {
        await s.close();
      }
    };
    const first = await outcomes();
    expect(await outcomes()).toEqual(first);
    expect(new Set(first)).toEqual(new Set(["success", "fail", "creation_failed"]));
  });
});

describe("jobs flavour", () => {
  it("accepts market names and answers state, a resultJson string, costTime and creditsConsumed", async () => {
    sim = await startSimulator({ ...SLOW_ENOUGH_TO_WATCH, randomSeed: 2 });
    const body = {
      model: "qwen/text-to-image",
      input: {
        prompt: "a lighthouse",
        image_size: "square",
        acceleration: "high",
        output_format: "jpeg",
        enable_safety_checker: false,
      },
    };
    const created = await call(sim, "POST", "/api/v1/jobs/createTask", { body });
    expect(created.body.code).toBe(200);
    const taskId: string = created.body.data.taskId;
    expect(sim.task(taskId)!.params).toEqual({
      prompt: "a lighthouse",
      image_size: "square",
      acceleration_level: "high",
      output_format: "jpg",
      safety_check: false,
    });

    expect((await jobsStatus(sim, taskId)).body).toEqual({ code: 422, msg: "recordInfo is null" });
    const visible = await until(
      () => jobsStatus(sim!, taskId),
      (a) => a.body.code === 200,
    );
    expect(["waiting", "queuing", "generating"]).toContain(visible.body.data.state);
    expect(visible.body.data).toMatchObject({ resultJson: null, failCode: null, completeTime: null });

    const done = await until(
      () => jobsStatus(sim!, taskId),
      (a) =>
        a.body.data.state !== "generating" &&
        a.body.data.state !== "waiting" &&
        a.body.data.state !== "queuing",
    );
    const record = done.body.data;
    expect(record).toMatchObject({
      taskId,
      model: "qwen/text-to-image",
      state: "success",
      failCode: null,
      failMsg: null,
      creditsConsumed: 6,
    });
    expect(JSON.parse(record.param)).toEqual(body);
    // costTime is simulated ms: the 20-30 s latency, whatever the time scale.
    expect(record.costTime).toBeGreaterThanOrEqual(19_900);
    expect(record.costTime).toBeLessThanOrEqual(30_100);
    expect(record.completeTime).toBeGreaterThan(record.createTime);
    expect(record.updateTime).toBe(record.completeTime);
    expect(typeof record.resultJson).toBe("string");
    const { resultUrls } = JSON.parse(record.resultJson);
    expect(resultUrls).toEqual([`${sim.url}/files/${taskId}/0.jpg`]);

    const image = await download(resultUrls[0]);
    expect(image.type).toBe("image/jpeg");
    expect(image.bytes.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(image.bytes.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
    expect(jpegMarkers(image.bytes)).toEqual([0xe0, 0xfe, 0xdb, 0xc0, 0xc4, 0xda]);
    expect(sim.stats().creditsLeft).toBe(1_000_000 - 6);
  });

  it("reports failures as state fail with a failCode, and either flavour reads any task", async () => {
    sim = await startSimulator({ ...FAST, reportCreditsConsumed: false });
    sim.setNextOutcome("fail");
    const created = await call(sim, "POST", "/api/v1/jobs/createTask", {
      body: { model: "qwen/text-to-image", input: { prompt: "p" } },
    });
    const taskId = created.body.data.taskId;
    const done = await until(
      () => jobsStatus(sim!, taskId),
      (a) => a.body.data?.state === "fail",
    );
    expect(done.body.data).toMatchObject({ failCode: "501", failMsg: expect.any(String), resultJson: null });
    expect(done.body.data).not.toHaveProperty("creditsConsumed");
    expect((await qwenStatus(sim, taskId)).body.data).toMatchObject({ taskId, successFlag: 2 });

    sim.setNextOutcome(undefined);
    const qwenTask = await submitQwen(sim, { prompt: "q" });
    const viaJobs = await until(
      () => jobsStatus(sim!, qwenTask),
      (a) => a.body.data?.state === "success",
    );
    expect(JSON.parse(viaJobs.body.data.resultJson).resultUrls).toHaveLength(1);
  });
});

describe("status errors", () => {
  it("answers 422 for an unknown task and 400 when taskId is missing", async () => {
    sim = await startSimulator(FAST);
    expect((await qwenStatus(sim, "nope")).body).toEqual({ code: 422, msg: "recordInfo is null" });
    expect((await call(sim, "GET", "/api/v1/jobs/recordInfo")).body.code).toBe(400);
    expect((await call(sim, "GET", "/api/v1/qwen/record-info?taskId=")).body.code).toBe(400);
  });
});

describe("auth", () => {
  it("answers HTTP 200 with code 401 for a missing or wrong key, and accepts the configured one", async () => {
    sim = await startSimulator({ ...FAST, apiKey: "right" });
    for (const key of [null, "", "wrong"]) {
      const answer = await call(sim, "POST", "/api/v1/qwen/generate", { body: { prompt: "p" }, key });
      expect(answer.status).toBe(200);
      expect(answer.body.code).toBe(401);
    }
    expect((await call(sim, "GET", "/api/v1/chat/credit", { key: "wrong" })).body.code).toBe(401);
    expect(
      (await call(sim, "POST", "/api/v1/qwen/generate", { body: { prompt: "p" }, key: "right" })).body.code,
    ).toBe(200);
    expect(sim.stats().creates).toBe(1);
  });

  it("accepts any non-empty key when none is configured", async () => {
    sim = await startSimulator(FAST);
    expect((await call(sim, "GET", "/api/v1/chat/credit", { key: "anything" })).body.code).toBe(200);
    expect((await call(sim, "GET", "/api/v1/chat/credit", { key: null })).body.code).toBe(401);
  });
});

describe("validation", () => {
  const tooLong = (n: number) => "😀".repeat(n); // code points, not UTF-16 units, are counted
  it.each([
    ["prompt missing", { prompt: undefined }],
    ["prompt empty", { prompt: "" }],
    ["prompt not a string", { prompt: 5 }],
    ["prompt over 5000 characters", { prompt: tooLong(5001) }],
    ["image_size unknown", { image_size: "huge" }],
    ["num_inference_steps below 2", { num_inference_steps: 1 }],
    ["num_inference_steps above 250", { num_inference_steps: 251 }],
    ["num_inference_steps fractional", { num_inference_steps: 2.5 }],
    ["guidance_scale below 0", { guidance_scale: -0.1 }],
    ["guidance_scale above 20", { guidance_scale: 20.5 }],
    ["guidance_scale a string", { guidance_scale: "7" }],
    ["seed fractional", { seed: 1.5 }],
    ["seed negative", { seed: -1 }],
    ["acceleration_level unknown", { acceleration_level: "turbo" }],
    ["output_format unknown", { output_format: "gif" }],
    ["output_format jpeg (a market name) on the qwen endpoint", { output_format: "jpeg" }],
    ["safety_check not a boolean", { safety_check: "yes" }],
    ["negative_prompt over 500 characters", { negative_prompt: "n".repeat(501) }],
    ["callBackUrl not a URL", { callBackUrl: "not a url" }],
  ])("qwen: %s answers 422 and creates nothing", async (_name, fields) => {
    sim = await startSimulator(FAST);
    const answer = await call(sim, "POST", "/api/v1/qwen/generate", { body: { prompt: "ok", ...fields } });
    expect(answer.status).toBe(200);
    expect(answer.body.code).toBe(422);
    expect(answer.body.msg).toEqual(expect.any(String));
    expect(sim.stats()).toMatchObject({ creates: 0, creditsCharged: 0 });
  });

  it.each([
    ["model missing", { input: { prompt: "ok" } }],
    ["model unknown", { model: "other/model", input: { prompt: "ok" } }],
    ["input missing", { model: "qwen/text-to-image" }],
    ["acceleration unknown", { model: "qwen/text-to-image", input: { prompt: "ok", acceleration: "warp" } }],
    [
      "acceleration and acceleration_level disagree",
      {
        model: "qwen/text-to-image",
        input: { prompt: "ok", acceleration: "high", acceleration_level: "none" },
      },
    ],
    [
      "enable_safety_checker not a boolean",
      { model: "qwen/text-to-image", input: { prompt: "ok", enable_safety_checker: 1 } },
    ],
  ])("jobs: %s answers 422 and creates nothing", async (_name, body) => {
    sim = await startSimulator(FAST);
    const answer = await call(sim, "POST", "/api/v1/jobs/createTask", { body });
    expect(answer.body.code).toBe(422);
    expect(sim.stats().creates).toBe(0);
  });

  it("accepts the limits themselves", async () => {
    sim = await startSimulator(FAST);
    const body = {
      prompt: tooLong(5000),
      num_inference_steps: 250,
      guidance_scale: 0,
      seed: 2 ** 32 - 1,
      negative_prompt: "n".repeat(500),
      image_size: "portrait_16_9",
    };
    expect((await call(sim, "POST", "/api/v1/qwen/generate", { body })).body.code).toBe(200);
  });

  it("answers 400 for a body that is not JSON", async () => {
    sim = await startSimulator(FAST);
    const response = await fetch(`${sim.url}/api/v1/qwen/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: "{not json",
    });
    expect(await response.json()).toMatchObject({ code: 400 });
  });
});

describe("credits and maintenance", () => {
  it("charges by acceleration at create and answers 402 without creating when short", async () => {
    sim = await startSimulator({ ...FAST, credits: 21 });
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body).toEqual({
      code: 200,
      msg: "success",
      data: 21,
    });
    await submitQwen(sim, { prompt: "a", acceleration_level: "regular" }); // 7
    await submitQwen(sim, { prompt: "b" }); // unspecified: 8
    const short = await call(sim, "POST", "/api/v1/qwen/generate", {
      body: { prompt: "c", acceleration_level: "none" },
    });
    expect(short.body.code).toBe(402);
    await submitQwen(sim, { prompt: "d", acceleration_level: "high" }); // 6 fits
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body.data).toBe(0);
    expect(sim.stats()).toMatchObject({ creates: 3, creditsCharged: 21, creditsLeft: 0 });

    sim.setCredits(100);
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body.data).toBe(100);
  });

  it("answers 455 on every API endpoint under maintenance, and recovers", async () => {
    sim = await startSimulator(FAST);
    const taskId = await submitQwen(sim, { prompt: "before" });
    sim.setMaintenance(true);
    const answers = await Promise.all([
      call(sim, "POST", "/api/v1/qwen/generate", { body: { prompt: "p" } }),
      call(sim, "POST", "/api/v1/jobs/createTask", {
        body: { model: "qwen/text-to-image", input: { prompt: "p" } },
      }),
      qwenStatus(sim, taskId),
      jobsStatus(sim, taskId),
      call(sim, "GET", "/api/v1/chat/credit"),
      call(sim, "POST", "/api/v1/common/download-url", { body: { url: `${sim.url}/files/${taskId}/0.png` } }),
    ]);
    expect(answers.map((answer) => answer.body.code)).toEqual([455, 455, 455, 455, 455, 455]);
    expect(sim.stats().creates).toBe(1);
    sim.setMaintenance(false);
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body.code).toBe(200);
  });
});

describe("stats and control over HTTP", () => {
  it("serves stats as JSON and lets another process steer maintenance, credits and completion", async () => {
    sim = await startSimulator({ ...SLOW_ENOUGH_TO_WATCH, latency: { minMs: 600_000, maxMs: 600_000 } });
    const ids = await Promise.all(["a", "b", "c"].map((prompt) => submitQwen(sim!, { prompt })));
    const stats = await call(sim, "GET", "/__sim/stats", { key: null });
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ creates: 3, inFlight: 3, maxInFlight: 3, creditsCharged: 24 });
    expect(stats.body.createTimes).toHaveLength(3);
    expect(Object.keys(stats.body.createsByRequestHash)).toHaveLength(3);

    const steered = await call(sim, "POST", "/__sim/control", {
      key: null,
      body: { maintenance: true, credits: 5, completeAll: true },
    });
    expect(steered.body).toMatchObject({ code: 200, data: { inFlight: 0, creditsLeft: 5 } });
    expect((await call(sim, "GET", "/api/v1/chat/credit")).body.code).toBe(455);
    await call(sim, "POST", "/__sim/control", { key: null, body: { maintenance: false } });
    for (const id of ids) expect((await qwenStatus(sim, id)).body.data.successFlag).toBe(1);

    expect((await call(sim, "POST", "/__sim/control", { key: null, body: { credits: "lots" } })).status).toBe(
      400,
    );
  });
});
