/**
 * The worker issue's "done when", every part a spawned command: `simulate`, `enqueue` of a
 * 200-row manifest, two `worker` processes archiving it to s3rver and (a second run) to a folder,
 * and `status --wait`, `status --json` and `results` telling the truth, checked against the
 * stored bytes. The rate is 100 per 2 s on both sides (the default 20 per 10 s would take 100 s
 * for 200 rows).
 */
import { readFile } from "node:fs/promises";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import type { SimulatorStats } from "../../src/simulator/types.js";
import {
  type E2eDeployment,
  expectFolderArchive,
  expectS3Archive,
  sha256,
  simStats,
  spawnSimulator,
  startDeployment,
} from "../helpers/e2e-deployment.js";
import { ProcessSet } from "../helpers/processes.js";
import { type RunningS3rver, startS3rver } from "../helpers/s3rver.js";

const ROWS = 200;
/** The simulator's flags here: slower answers and a record lag, 100 creates per 2 s. */
const DONE_WHEN_SIM = ["--rate-limit", "100/2s", "--latency", "500ms-2s", "--record-lag", "300ms"];
const procs = new ProcessSet();
let dep: E2eDeployment | undefined;
let s3: RunningS3rver | undefined;

afterEach(async () => {
  await procs.killAll();
  await s3?.close();
  await dep?.close();
  s3 = undefined;
  dep = undefined;
});

interface ResultRecord {
  id: string;
  status: string;
  taskId: string;
  location: string;
  bytes: number;
  sha256: string;
  credits: number;
  uncertain: number;
  error?: string;
}

/**
 * enqueue -> two workers -> status --wait -> status --json -> results; returns the results and
 * the simulator's stats once the batch is done.
 */
async function runBatch(d: E2eDeployment, env: Record<string, string>) {
  const manifest = await d.writeManifest("prompts-200", ROWS);
  const enqueued = await procs.run(["enqueue", manifest], env);
  expect(enqueued.code, enqueued.stderr).toBe(0);
  expect(enqueued.stdout).toMatch(/Batch:\s+prompts-200/);
  expect(enqueued.stdout).toMatch(/Enqueued:\s+200/);

  const started = Date.now();
  for (const n of [1, 2]) procs.start(`worker-${n}`, ["worker"], env);
  const wait = await procs.run(["status", "prompts-200", "--wait"], env, 90_000);
  const elapsed = Date.now() - started;
  expect(wait.code, `${wait.stdout}\n${procs.report()}`).toBe(0);
  expect(wait.stdout).toContain("200/200 archived · 0 failed");

  const status = await procs.run(["status", "prompts-200", "--json"], env);
  expect(status.code, status.stderr).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({
    batch: "prompts-200",
    total: ROWS,
    queued: 0,
    submitted: 0,
    generating: 0,
    archiving: 0,
    archived: ROWS,
    failed: 0,
    cancelled: 0,
    waitingBudget: 0,
    uncertain: 0,
    creditsEstimated: 8 * ROWS,
    creditsReserved: 0,
    creditsSpent: 8 * ROWS,
    paused: null,
    finished: true,
  });

  const results = await procs.run(["results", "prompts-200"], env);
  expect(results.code, results.stderr).toBe(0);
  const records = results.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as ResultRecord);
  expect(records.map((r) => r.id)).toEqual(Array.from({ length: ROWS }, (_, i) => `r${i + 1}`));
  for (const record of records) {
    expect(record, record.id).toMatchObject({ status: "archived", credits: 8, uncertain: 0 });
    expect(record.taskId).toMatch(/\S/);
  }
  expect(new Set(records.map((r) => r.taskId)).size).toBe(ROWS);
  expect(procs.errorLogs()).toEqual([]);
  return { records, elapsed };
}

/**
 * One create per row, no request twice. A 429 creates nothing, so it is not a duplicate; the
 * limiter's margin makes one rare, not impossible (a create is counted when the simulator gets to
 * it, and a loaded machine can hold a request longer than the margin). worker-fleet.test.ts holds
 * the rate limit to zero 429s; here a few are tolerated and shown.
 */
function expectOneCreatePerRow(stats: SimulatorStats): void {
  expect(stats.creates).toBe(ROWS);
  expect(stats.rateLimited).toBeLessThanOrEqual(5);
  if (stats.rateLimited > 0) console.log(`note: ${stats.rateLimited} creates answered 429 under load`);
  expect(Object.values(stats.createsByRequestHash).filter((n) => n > 1)).toEqual([]);
}

describe("done when: simulate, enqueue, two workers, status and results (all spawned)", () => {
  it("archives a 200-row manifest to s3rver, and results match the stored objects", {
    timeout: 120_000,
  }, async () => {
    dep = await startDeployment({ label: "done-s3", report: () => procs.report() });
    s3 = await startS3rver();
    const url = await spawnSimulator(procs, DONE_WHEN_SIM);
    const env = {
      ...dep.env,
      KIE_BASE_URL: url,
      KIE_RATE_LIMIT: "100/2s",
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
    const { records, elapsed } = await runBatch(dep, env);

    const client = new S3Client(s3.clientOptions);
    try {
      for (const record of records) {
        const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(record.location);
        expect(match?.[1], record.location).toBe(s3.bucket);
        const object = await client.send(new GetObjectCommand({ Bucket: match![1], Key: match![2] }));
        const bytes = Buffer.from(await object.Body!.transformToByteArray());
        expect(bytes.length, record.id).toBe(record.bytes);
        expect(sha256(bytes), record.id).toBe(record.sha256);
      }
    } finally {
      client.destroy();
    }
    await expectS3Archive(s3, "prompts-200", await dep.rows("prompts-200"));
    expectOneCreatePerRow(await simStats(url));
    console.log(`200 rows to s3rver with 2 workers: ${elapsed} ms`);
  });

  it("archives a 200-row manifest to a folder, and results match the files", {
    timeout: 120_000,
  }, async () => {
    dep = await startDeployment({ label: "done-dir", report: () => procs.report() });
    const url = await spawnSimulator(procs, DONE_WHEN_SIM);
    const env = { ...dep.env, KIE_BASE_URL: url, KIE_RATE_LIMIT: "100/2s", ARCHIVE_DIR: dep.archiveDir };
    const { records, elapsed } = await runBatch(dep, env);

    for (const record of records) {
      const bytes = await readFile(record.location);
      expect(bytes.length, record.id).toBe(record.bytes);
      expect(sha256(bytes), record.id).toBe(record.sha256);
    }
    await expectFolderArchive(dep.archiveDir, "prompts-200", await dep.rows("prompts-200"));
    expectOneCreatePerRow(await simStats(url));
    console.log(`200 rows to a folder with 2 workers: ${elapsed} ms`);
  });
});
