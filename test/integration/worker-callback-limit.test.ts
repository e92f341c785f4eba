/**
 * A callback is a rate-limited hint: it may promote a task's poll at most once a minute, so a
 * task id that leaks cannot spend the account's status budget. And a receiver that takes
 * unsigned callbacks says so when the worker starts.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { startWorker } from "../../src/app/index.js";
import { createLogger } from "../../src/core/logger.js";
import { webhookSignature } from "../../src/worker/webhook.js";
import { freePort } from "../helpers/free-port.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

const HMAC_KEY = "test-webhook-hmac-key";

/** A well-signed, fresh callback for `taskId` to the row's path. */
function callback(base: string, path: string, taskId: string) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-webhook-timestamp": timestamp,
      "x-webhook-signature": webhookSignature(taskId, timestamp, HMAC_KEY),
    },
    body: JSON.stringify({ code: 200, msg: "success", data: { taskId, state: "success" } }),
  });
}

describe("worker: callbacks are rate-limited hints", () => {
  const harnesses = harnessPerTest();

  it("a second callback for a task within the minute promotes nothing; another task's still does", async () => {
    const port = await freePort();
    const h = await harnesses.start({
      // Generations outlast the test; the simulator signs with another key, so only ours count.
      sim: { webhookHmacKey: "not-the-workers-key", latency: { minMs: 600_000, maxMs: 600_000 } },
      env: {
        KIE_CALLBACK_URL: `http://127.0.0.1:${port}/kie`,
        KIE_WEBHOOK_HMAC_KEY: HMAC_KEY,
        KIE_POLL_INTERVAL: "30s",
      },
    });
    const { pipeline } = h;
    await h.worker({ listen: port, listenHost: "127.0.0.1" });
    const base = `http://127.0.0.1:${port}`;
    await pipeline.addRows("blim", [{ id: "a" }, { id: "b" }]);
    const taskOf = (id: string) =>
      until(`row ${id}'s task`, async () => (await pipeline.ledger.getRow("blim", id))?.taskId ?? false);
    const pollOf = async (id: string) => (await pipeline.queues.queues.poll.getJob(`blim/${id}`))!;
    const [taskA, taskB] = [await taskOf("a"), await taskOf("b")];
    await until("both poll jobs delayed", async () =>
      (await Promise.all(["a", "b"].map(async (id) => (await pollOf(id))?.isDelayed()))).every(Boolean),
    );
    const calls = () => pipeline.sim.stats().statusCalls;
    expect(calls()).toBe(0);

    // The first callback wakes the poll: one status call, then back to delayed.
    expect((await callback(base, "/kie/blim/a", taskA)).status).toBe(200);
    await until("row a's promoted poll to run and wait again", async () => {
      const job = await pollOf("a");
      return calls() === 1 && job.data.checks === 1 && (await job.isDelayed());
    });

    // The next status call would hang for a while: a promoted job would be seen running.
    pipeline.sim.injectFaults("status", { kind: "delay", ms: 3_000 });
    for (let i = 0; i < 3; i++) {
      expect((await callback(base, "/kie/blim/a", taskA)).status).toBe(200);
      expect(await (await pollOf("a")).getState()).toBe("delayed");
    }
    expect(calls()).toBe(1);

    // The limit is per task: row b's first callback is promoted.
    expect((await callback(base, "/kie/blim/b", taskB)).status).toBe(200);
    await until("row b's promoted poll to make its status call", () => calls() === 2);
    expect(await (await pollOf("a")).getState()).toBe("delayed");
  });

  it("KIE_CALLBACK_URL without KIE_WEBHOOK_HMAC_KEY warns when the worker starts", async () => {
    const h = await harnesses.start();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    const log = createLogger({ level: "info", pretty: false, destination: sink });
    const warnings = () =>
      lines
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .filter((l) => l.msg.includes("KIE_WEBHOOK_HMAC_KEY"));

    const unsigned = await startWorker(h.config({ KIE_CALLBACK_URL: "http://127.0.0.1:9/kie" }), log, {
      stages: [],
    });
    await unsigned.close(5_000);
    expect(warnings()).toEqual([expect.objectContaining({ level: 40 })]);
    expect(warnings()[0]?.msg).toContain("KIE_CALLBACK_URL is set without KIE_WEBHOOK_HMAC_KEY");

    lines.length = 0;
    const signed = await startWorker(
      h.config({ KIE_CALLBACK_URL: "http://127.0.0.1:9/kie", KIE_WEBHOOK_HMAC_KEY: HMAC_KEY }),
      log,
      { stages: [] },
    );
    await signed.close(5_000);
    expect(warnings()).toEqual([]);
  });
});
