import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type SimulatorHandle, startSimulator } from "../../src/simulator/index.js";
import { call, submitQwen, until } from "./simulator-helpers.js";

const FAST = { timeScale: 10_000, recordLagMs: 0 };
const HMAC_KEY = "webhook-secret";

interface Received {
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: the callback body as sent
  body: any;
}

/** A callback receiver on loopback that answers each POST with the next status in `statuses` (then 200). */
async function receiver(
  statuses: number[] = [],
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/kie-callback`, received, server };
}

/** What a receiver must do: recompute base64(HMAC-SHA256(taskId + "." + timestamp)) and compare in constant time. */
function signatureValid(taskId: string, headers: IncomingHttpHeaders): boolean {
  const timestamp = String(headers["x-webhook-timestamp"]);
  const expected = createHmac("sha256", HMAC_KEY).update(`${taskId}.${timestamp}`).digest();
  const given = Buffer.from(String(headers["x-webhook-signature"]), "base64");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});
async function setup(options: Parameters<typeof startSimulator>[0], statuses?: number[]) {
  const sim = await startSimulator(options);
  const hook = await receiver(statuses);
  cleanups.push(
    () => sim.close(),
    () => new Promise<void>((resolve) => hook.server.close(() => resolve())),
  );
  return { sim, hook };
}

function createJob(sim: SimulatorHandle, callBackUrl: string): Promise<string> {
  return call(sim, "POST", "/api/v1/jobs/createTask", {
    body: { model: "qwen/text-to-image", input: { prompt: "called back", seed: 1 }, callBackUrl },
  }).then((answer) => answer.body.data.taskId);
}

describe("callbacks", () => {
  it("POSTs the market body to callBackUrl when a task succeeds, signed with a verifiable HMAC", async () => {
    const { sim, hook } = await setup({ ...FAST, webhookHmacKey: HMAC_KEY });
    const taskId = await createJob(sim, hook.url);
    // The receiver has the body before the simulator reads its answer: wait for the latter.
    await until(
      async () => sim.stats().callbacksSent,
      (sent) => sent === 1,
    );
    const [{ headers, body }] = hook.received as [Received];
    expect(body).toMatchObject({
      code: 200,
      msg: "success",
      data: { taskId, state: "success", failCode: null, failMsg: null },
    });
    expect(JSON.parse(body.data.resultJson).resultUrls).toEqual(sim.task(taskId)!.imageUrls);
    const timestamp = Number(headers["x-webhook-timestamp"]);
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(5);
    expect(signatureValid(taskId, headers)).toBe(true);
    expect(signatureValid("another-task", headers)).toBe(false);
    expect(sim.stats()).toMatchObject({ callbacksSent: 1, callbacksFailed: 0 });
  });

  it("reports a failed task with code 501 and state fail; a qwen task's callback carries successFlag too", async () => {
    const { sim, hook } = await setup(FAST);
    sim.setNextOutcome("fail");
    const taskId = await submitQwen(sim, { prompt: "doomed", callBackUrl: hook.url });
    await until(
      async () => hook.received.length,
      (count) => count === 1,
    );
    const [{ headers, body }] = hook.received as [Received];
    expect(body).toMatchObject({
      code: 501,
      data: { taskId, state: "fail", failCode: "501", successFlag: 2 },
    });
    expect(headers["x-webhook-signature"]).toBeUndefined(); // no key, no signature
  });

  it("retries a failing receiver, up to 3 attempts in all", async () => {
    const { sim, hook } = await setup({ ...FAST, webhookHmacKey: HMAC_KEY }, [500, 503]);
    const taskId = await createJob(sim, hook.url);
    await until(
      async () => sim.stats().callbacksSent,
      (sent) => sent === 1,
    );
    expect(hook.received).toHaveLength(3);
    expect(hook.received.every(({ headers }) => signatureValid(taskId, headers))).toBe(true);
    expect(sim.stats()).toMatchObject({ callbacksSent: 1, callbacksFailed: 2, callbacksAbandoned: 0 });
  });

  it("gives up after 3 failed attempts", async () => {
    const { sim, hook } = await setup(FAST, [500, 500, 500, 500]);
    await createJob(sim, hook.url);
    await until(
      async () => sim.stats().callbacksAbandoned,
      (abandoned) => abandoned === 1,
    );
    expect(hook.received).toHaveLength(3);
    expect(sim.stats()).toMatchObject({ callbacksSent: 0, callbacksFailed: 3 });
  });

  it("counts an unreachable receiver as failed attempts", async () => {
    const { sim, hook } = await setup(FAST);
    await new Promise<void>((resolve) => hook.server.close(() => resolve()));
    await createJob(sim, hook.url);
    await until(
      async () => sim.stats().callbacksAbandoned,
      (abandoned) => abandoned === 1,
    );
    expect(sim.stats().callbacksFailed).toBe(3);
  });

  it("fires when completeAll finishes a long task", async () => {
    const { sim, hook } = await setup({ ...FAST, timeScale: 1, latency: { minMs: 600_000, maxMs: 600_000 } });
    await createJob(sim, hook.url);
    expect(hook.received).toHaveLength(0);
    sim.completeAll();
    await until(
      async () => hook.received.length,
      (count) => count === 1,
    );
    expect(hook.received[0]!.body.data.state).toBe("success");
  });
});
