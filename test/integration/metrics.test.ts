/**
 * `/metrics` on the admin port after a small batch through an in-process worker: the names an
 * operator's dashboards use, with values that match what happened; never on the webhook port.
 */
import { describe, expect, it } from "vitest";
import type { RunningWorker } from "../../src/app/index.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { metricNames, parseSamples, sample } from "../helpers/prometheus.js";
import { until } from "../helpers/worker-harness.js";

const EXPECTED_NAMES = [
  "kie_batch_api_requests_total",
  "kie_batch_api_request_duration_seconds",
  "kie_batch_submits_total",
  "kie_batch_rate_limited_total",
  "kie_batch_status_calls_total",
  "kie_batch_generation_seconds",
  "kie_batch_archive_bytes_total",
  "kie_batch_archive_put_duration_seconds",
  "kie_batch_credits_spent_total",
  "kie_batch_rows_finished_total",
  "kie_batch_batches_finished_total",
  "kie_batch_pauses_total",
  "kie_batch_resumes_total",
  "kie_batch_backoffs_total",
  "kie_batch_alerts_total",
  "kie_batch_scrape_errors_total",
  "kie_batch_in_flight_tasks",
  "kie_batch_submissions_paused",
  "kie_batch_submissions_paused_since_seconds",
  "kie_batch_backoff_remaining_seconds",
  "kie_batch_oldest_unarchived_age_seconds",
  "kie_batch_queue_jobs",
  "kie_batch_batches",
  "kie_batch_batch_rows",
  "kie_batch_batch_credits_spent",
];

async function get(port: number, path: string): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return {
    status: response.status,
    type: response.headers.get("content-type") ?? "",
    text: await response.text(),
  };
}

async function scrape(worker: RunningWorker) {
  const { status, type, text } = await get(worker.admin!.port, "/metrics");
  expect(status).toBe(200);
  expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text, samples: parseSamples(text) };
}

describe("metrics: the admin port", () => {
  const harnesses = harnessPerTest();

  it("after a batch: submits, archive bytes, generation times, credits and queue counts add up", async () => {
    const h = await harnesses.start();
    const worker = await h.worker({ listen: 0, adminListen: 0 });
    expect(worker.admin?.host).toBe("127.0.0.1");
    await h.pipeline.addRows("bm", [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d", params: { seed: 7 } }]);
    const summary = await h.pipeline.waitFinished("bm");
    expect(summary).toMatchObject({ total: 4, archived: 4 });

    // The worker counts a row after its last ledger move answers, and its job completes after
    // that: the ledger can show the batch finished a moment before either. Scrape until the last
    // row is counted and no job is left in any queue.
    const noJobLeft = (scraped: Awaited<ReturnType<typeof scrape>>) =>
      ["submit", "poll", "archive"].every((stage) =>
        ["waiting", "active", "delayed", "failed"].every(
          (state) => sample(scraped.samples, "kie_batch_queue_jobs", { stage, state }) === 0,
        ),
      );
    const { text, samples } = await until("a scrape that counts the last row, with no job left", async () => {
      const scraped = await scrape(worker);
      return sample(scraped.samples, "kie_batch_batches_finished_total") === 1 &&
        sample(scraped.samples, "kie_batch_rows_finished_total", { status: "archived" }) === 4 &&
        noJobLeft(scraped)
        ? scraped
        : undefined;
    });
    expect(metricNames(text)).toEqual(expect.arrayContaining(EXPECTED_NAMES));
    for (const name of metricNames(text).filter((n) => !/^(process|nodejs)_/.test(n))) {
      expect(name).toMatch(/^kie_batch_/);
    }
    // prom-client's process metrics, under their standard names.
    expect(sample(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(sample(samples, "nodejs_eventloop_lag_seconds")).toBeDefined();

    expect(sample(samples, "kie_batch_submits_total")).toBe(4);
    expect(sample(samples, "kie_batch_api_requests_total", { endpoint: "submit", code: "ok" })).toBe(4);
    expect(sample(samples, "kie_batch_api_request_duration_seconds_count", { endpoint: "status" })).toBe(
      h.pipeline.sim.stats().statusCalls,
    );
    expect(sample(samples, "kie_batch_status_calls_total", { result: "success" })).toBe(4);
    expect(sample(samples, "kie_batch_generation_seconds_count")).toBe(4);
    expect(sample(samples, "kie_batch_generation_seconds_sum")).toBeGreaterThan(0);
    expect(sample(samples, "kie_batch_archive_bytes_total", { kind: "image" })).toBeGreaterThan(0);
    expect(
      sample(samples, "kie_batch_archive_put_duration_seconds_count", { kind: "image", outcome: "ok" }),
    ).toBe(4);
    expect(sample(samples, "kie_batch_credits_spent_total")).toBe(summary.creditsSpent);
    expect(summary.creditsSpent).toBeGreaterThan(0);
    expect(sample(samples, "kie_batch_rows_finished_total", { status: "archived" })).toBe(4);
    expect(sample(samples, "kie_batch_batches_finished_total")).toBe(1);

    // Fleet-wide state, read from Redis at scrape time.
    expect(sample(samples, "kie_batch_in_flight_tasks")).toBe(0);
    expect(sample(samples, "kie_batch_submissions_paused", { kind: "manual" })).toBe(0);
    expect(sample(samples, "kie_batch_oldest_unarchived_age_seconds")).toBe(0);
    for (const stage of ["submit", "poll", "archive"]) {
      for (const state of ["waiting", "active", "delayed", "failed"]) {
        expect(sample(samples, "kie_batch_queue_jobs", { stage, state })).toBe(0);
      }
    }
    expect(sample(samples, "kie_batch_batch_rows", { batch: "bm", status: "archived" })).toBe(4);
    expect(sample(samples, "kie_batch_batch_credits_spent", { batch: "bm" })).toBe(summary.creditsSpent);
    expect(sample(samples, "kie_batch_batches", { state: "finished" })).toBe(1);
  });

  it("a scrape reads the fleet's state now: a pause, rows waiting and jobs queued show at once", async () => {
    const h = await harnesses.start();
    const worker = await h.worker({ adminListen: 0 });
    const since = (await h.fleet().pause.pause("manual", "maintenance window")).state.since;
    await h.pipeline.addRows("bq", [{ id: "a" }, { id: "b" }, { id: "c" }]);

    const harness = h;
    const { samples } = await until("a scrape that sees the pause and the queued rows", async () => {
      const scraped = await scrape(worker);
      return sample(scraped.samples, "kie_batch_batch_rows", { batch: "bq", status: "queued" }) === 3 &&
        sample(scraped.samples, "kie_batch_submissions_paused", { kind: "manual" }) === 1
        ? scraped
        : false;
    });
    expect(sample(samples, "kie_batch_submissions_paused", { kind: "out-of-credits" })).toBe(0);
    expect(sample(samples, "kie_batch_submissions_paused_since_seconds")).toBe(since / 1000);
    const submitJobs = ["waiting", "active", "prioritized"].reduce(
      (sum, state) => sum + (sample(samples, "kie_batch_queue_jobs", { stage: "submit", state }) ?? 0),
      0,
    );
    expect(submitJobs).toBe(3);

    await harness.fleet().pause.resume();
    await harness.pipeline.waitFinished("bq");
    const after = await scrape(worker);
    expect(sample(after.samples, "kie_batch_submissions_paused", { kind: "manual" })).toBe(0);
    expect(sample(after.samples, "kie_batch_submissions_paused_since_seconds")).toBe(0);
  });

  it("/metrics is never on the webhook port; /healthz answers on both", async () => {
    const h = await harnesses.start();
    const worker = await h.worker({ listen: 0, adminListen: 0 });
    const webhook = worker.webhook!.port;
    const admin = worker.admin!.port;
    expect(webhook).not.toBe(admin);

    const onWebhook = await get(webhook, "/metrics");
    expect(onWebhook.status).toBe(404);
    expect(onWebhook.text).not.toMatch(/kie_batch_/);
    expect((await get(webhook, "/healthz")).status).toBe(200);
    expect((await get(admin, "/healthz")).status).toBe(200);
    expect((await get(admin, "/nothing-here")).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${admin}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
  });
});
