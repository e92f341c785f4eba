/**
 * Webhook mode: with status checks 30 s apart, only a callback can make a row finish in seconds.
 * The receiver promotes the row's poll job for a well-signed, fresh callback of a task it knows,
 * and for nothing else.
 */
import { afterEach, describe, expect, it } from "vitest";
import { webhookSignature } from "../../src/worker/webhook.js";
import { freePort } from "../helpers/free-port.js";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

const HMAC_KEY = "test-webhook-hmac-key";

async function webhookHarness(
  simHmacKey: string,
  options: { latencyMs?: number; env?: Record<string, string> } = {},
) {
  const port = await freePort();
  const latency = options.latencyMs ?? 400;
  const h = await startHarness({
    sim: { webhookHmacKey: simHmacKey, latency: { minMs: latency - 100, maxMs: latency + 100 } },
    env: {
      KIE_CALLBACK_URL: `http://127.0.0.1:${port}/kie`,
      KIE_WEBHOOK_HMAC_KEY: HMAC_KEY,
      KIE_POLL_INTERVAL: "30s",
      ...options.env,
    },
  });
  await h.worker({ listen: port, listenHost: "127.0.0.1" });
  return { h, base: `http://127.0.0.1:${port}` };
}

/** POSTs a callback for `taskId` to the row's path, signed with `key` at `timestamp` (unix s). */
function callback(url: string, taskId: string, sign?: { key: string; timestamp: number }) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (sign) {
    headers["x-webhook-timestamp"] = String(sign.timestamp);
    headers["x-webhook-signature"] = webhookSignature(taskId, String(sign.timestamp), sign.key);
  }
  return fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ code: 200, msg: "success", data: { taskId, state: "success" } }),
  });
}

const nowS = () => Math.floor(Date.now() / 1000);

describe("worker: webhook mode", () => {
  let h: WorkerHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("a callback promotes the poll job: rows archive in seconds although checks are 30 s apart", async () => {
    const setup = await webhookHarness(HMAC_KEY);
    h = setup.h;
    const started = Date.now();
    // "r1" as a row id: the callback path `/kie/bweb/r1` must not be read as a resubmit of row "bweb".
    await h.pipeline.addRows("bweb", [{ id: "a" }, { id: "r1" }]);

    const summary = await h.pipeline.waitFinished("bweb", 10_000);
    expect(summary).toMatchObject({ total: 2, archived: 2, failed: 0 });
    expect(Date.now() - started).toBeLessThan(8_000);
    const stats = h.pipeline.sim.stats();
    expect(stats.callbacksSent).toBeGreaterThanOrEqual(2);
    expect(stats.callbacksFailed).toBe(0);
    expect(stats.statusCalls).toBeLessThanOrEqual(4); // the status call confirmed; no polling loop

    const health = await fetch(`${setup.base}/healthz`);
    expect(health.status).toBe(200);
  });

  it("forged, stale and unknown callbacks are refused and promote nothing; a good one does", async () => {
    // The simulator signs with another key: its own callbacks are refused like forged ones.
    const setup = await webhookHarness("not-the-workers-key");
    h = setup.h;
    const { pipeline } = h;
    await pipeline.addRows("bforge", [{ id: "x" }]);
    const row = await until("the row's task", async () => {
      const r = await pipeline.ledger.getRow("bforge", "x");
      return r?.taskId ? r : false;
    });
    const taskId = row.taskId!;
    const url = `${setup.base}/kie/bforge/x`;
    await until("the simulator's callback to be refused", () => pipeline.sim.stats().callbacksFailed >= 1);

    const fresh = { key: HMAC_KEY, timestamp: nowS() };
    const refusals = [
      { to: url, taskId, sign: undefined, status: 401, error: "missing signature" },
      { to: url, taskId, sign: { ...fresh, key: "forged" }, status: 401, error: "bad signature" },
      { to: url, taskId, sign: { ...fresh, timestamp: nowS() - 600 }, status: 401, error: "stale signature" },
      { to: url, taskId: "task-nobody-made", sign: fresh, status: 404, error: "unknown task" },
      { to: `${setup.base}/kie/bforge/nope`, taskId, sign: fresh, status: 404, error: "unknown task" },
    ];
    for (const attempt of refusals) {
      const response = await callback(attempt.to, attempt.taskId, attempt.sign);
      expect({ status: response.status, body: await response.json() }).toEqual({
        status: attempt.status,
        body: { error: attempt.error },
      });
    }

    const poll = await pipeline.queues.queues.poll.getJob("bforge/x");
    expect(await poll?.isDelayed()).toBe(true);
    expect((await pipeline.ledger.getRow("bforge", "x"))?.status).toMatch(/submitted|generating/);

    const goodAt = Date.now();
    expect((await callback(url, taskId, { key: HMAC_KEY, timestamp: nowS() })).status).toBe(200);
    const summary = await pipeline.waitFinished("bforge", 8_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    expect(Date.now() - goodAt).toBeLessThan(5_000);
  });
  it("a callback of a task that finished after KIE_MAX_WAIT wakes its late check: archived at once, not at the next check", async () => {
    // Ten minutes a generation against an 8 s KIE_MAX_WAIT: the row fails (at 9 s at the latest),
    // its first late check is due 16 s after the submit.
    const setup = await webhookHarness(HMAC_KEY, {
      latencyMs: 600_000,
      env: { KIE_MAX_WAIT: "8s", KIE_POLL_INTERVAL: "1s" },
    });
    h = setup.h;
    const { pipeline } = h;
    await pipeline.addRows("bwake", [{ id: "slow" }]);
    expect(await pipeline.waitFinished("bwake", 20_000)).toMatchObject({ failed: 1 });
    const row = await pipeline.ledger.getRow("bwake", "slow");
    expect(await (await pipeline.queues.queues.poll.getJob("bwake/slow"))?.isDelayed()).toBe(true);

    // KIE finishes it and calls back: the late check runs now.
    pipeline.sim.completeAll();
    const archived = await until(
      "the late task's row to be archived",
      async () => ((await pipeline.ledger.getBatch("bwake"))?.archived === 1 ? Date.now() : undefined),
      { timeoutMs: 15_000 },
    );
    expect(archived).toBeLessThan(row!.submittedAt! + 16_000);
    expect(pipeline.sim.stats().creates).toBe(1);
  });
});
