/**
 * Logs carry no secret. A worker runs a batch through a wrong key (401), a 401 fault with the
 * right key, running out of credits (402), transient API faults, a failing image download and
 * signed callbacks, archiving to S3 and alerting to a webhook; every line it logs is captured at
 * trace level and searched for the API keys, the HMAC key, the AWS secret and the alert URL's
 * token. The same lines show that each line about a row names its batch and row.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type RunningWorker, startWorker } from "../../src/app/index.js";
import { webhookSignature } from "../../src/worker/webhook.js";
import { type AlertReceiver, startAlertReceiver } from "../helpers/alert-receiver.js";
import { capturingLogger } from "../helpers/capturing-logger.js";
import { freePort } from "../helpers/free-port.js";
import { s3rverContext } from "../helpers/s3rver-context.js";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

const HMAC_KEY = "whsec-logs-test-6c1d9e0f4a7b";
/** s3rver checks the key id only (SigV4 signatures are not verified): any secret passes. */
const AWS_SECRET = "aws-secret-logs-test-b83f27d05e91";
const aws = s3rverContext({ secretAccessKey: AWS_SECRET });

describe("logs", () => {
  let h: WorkerHarness | undefined;
  let receiver: AlertReceiver | undefined;
  const running: RunningWorker[] = [];
  afterEach(async () => {
    for (const worker of running.splice(0)) await worker.close(5_000);
    await h?.close();
    await receiver?.close();
    h = undefined;
    receiver = undefined;
  });

  it("no secret in any line, through 401s, 402s, faults and callbacks; row lines name batch and row", async () => {
    receiver = await startAlertReceiver();
    const port = await freePort();
    h = await startHarness({
      sim: { credits: 16, webhookHmacKey: HMAC_KEY, latency: { minMs: 200, maxMs: 400 } },
      env: {
        KIE_CALLBACK_URL: `http://127.0.0.1:${port}/kie`,
        KIE_WEBHOOK_HMAC_KEY: HMAC_KEY,
        KIE_ALERT_WEBHOOK_URL: receiver.url,
        S3_BUCKET: aws.s3.bucket,
        S3_ENDPOINT: aws.s3.endpoint,
        S3_FORCE_PATH_STYLE: "true",
        LOG_LEVEL: "trace",
      },
    });
    const { sim, apiKey } = h.pipeline;
    const wrongKey = `wrong-key-${apiKey.slice(-12)}-0d5e`;
    h.fleet(wrongKey); // its fleet keys are removed with the harness
    const captured = capturingLogger();
    const start = (env: Record<string, string> = {}, listen?: number) =>
      startWorker(h!.config(env), captured.log, {
        ...(listen === undefined ? {} : { listen, listenHost: "127.0.0.1" }),
        adminListen: 0,
        alerts: { pauseWatchMs: 200, sweepEveryMs: 200 },
        settings: { creditsProbeMs: 300 },
      }).then((worker) => {
        running.push(worker);
        return worker;
      });

    // A wrong key: 401, a bad-key pause of that account. Stopping it hands the rows back.
    const wrong = await start({ KIE_API_KEY: wrongKey });
    await h.pipeline.addRows(
      "blog",
      Array.from({ length: 5 }, (_, i) => ({ id: `r-${i + 1}` })),
    );
    await until("the wrong key's pause", async () => (await h!.fleet(wrongKey).pause.get()) ?? false);
    await wrong.close(5_000);

    // The right key, meeting a 401 fault (an operator resumes), transient faults, and 402.
    sim.injectFaults("submit", { kind: "code", code: 401 });
    sim.injectFaults("status", { kind: "http", status: 502 }, { kind: "reset" }, { kind: "code", code: 500 });
    sim.injectFaults("image", { kind: "http", status: 503 });
    const worker = await start({}, port);
    await until("the 401 pause", async () => (await h!.fleet().pause.get())?.kind === "bad-key");
    await h.fleet().pause.resume();
    await until("the 402 pause", async () => (await h!.fleet().pause.get())?.kind === "out-of-credits");
    sim.setCredits(1_000);

    // A forged callback (a wrong signature) on the way.
    const forged = await fetch(`http://127.0.0.1:${port}/kie/blog/r-1`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "x-webhook-signature": webhookSignature("t", "1", "not-the-key"),
      },
      body: JSON.stringify({ data: { taskId: "t" } }),
    });
    expect(forged.status).toBe(401);
    const summary = await h.pipeline.waitFinished("blog", 25_000);
    expect(summary).toMatchObject({ total: 5, archived: 5 });
    const metrics = await fetch(`http://127.0.0.1:${worker.admin!.port}/metrics`);
    expect(metrics.status).toBe(200);
    // An unread body keeps its socket paused and open after the server has gone.
    await metrics.body?.cancel();
    await until("the batch.finished alert", () => receiver!.of("batch.finished").length === 1);
    for (const w of running.splice(0)) await w.close(5_000);

    const text = captured.text();
    const lines = text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // The run went through what it should have: these lines are there to be searched.
    const messages = lines.map((line) => String(line.msg));
    for (const expected of [
      "KIE refused the API key: submissions paused fleet-wide until `kie-batch resume`",
      "out of credits: submissions paused fleet-wide; the balance is checked every minute",
      "status call failed; trying again later",
      "submitted",
      "archived",
      "alert sent",
    ]) {
      expect(messages).toContain(expected);
    }
    expect(sim.stats().callbacksSent).toBeGreaterThan(0);

    for (const secret of [apiKey, wrongKey, HMAC_KEY, AWS_SECRET, receiver.token]) {
      expect(text).not.toContain(secret);
    }
    // Alerts carry none either.
    for (const body of receiver.bodies) {
      for (const secret of [apiKey, wrongKey, HMAC_KEY, AWS_SECRET]) expect(body).not.toContain(secret);
    }

    // Every line about a task or a row names the batch and the row.
    const aboutRows = lines.filter((line) => "taskId" in line || "row" in line || "rowId" in line);
    expect(aboutRows.length).toBeGreaterThan(10);
    for (const line of aboutRows) {
      expect(line, JSON.stringify(line)).toHaveProperty("batch");
      expect("row" in line || "rowId" in line, JSON.stringify(line)).toBe(true);
    }
    for (const msg of ["submitted", "generated", "archived"]) {
      for (const line of lines.filter((l) => l.msg === msg)) {
        expect(line).toMatchObject({ batch: "blog", stage: expect.any(String) });
        expect(line.row).toMatch(/^r-\d$/);
      }
    }
  });
});
