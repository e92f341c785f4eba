/**
 * Outages of the parts around spawned workers: Redis crashing and coming back (with its data, as
 * a production Redis with persistence does), and the S3 store unreachable for a while. Workers
 * wait and go on: none exits, no row fails, every row is archived once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorHandle } from "../../src/simulator/types.js";
import {
  type E2eDeployment,
  expectArchivedOnce,
  expectFolderArchive,
  expectS3Archive,
  startDeployment,
} from "../helpers/e2e-deployment.js";
import { ProcessSet, startPrivateRedis } from "../helpers/processes.js";
import { type RestartableS3rver, startRestartableS3rver } from "../helpers/s3rver.js";

/** Workers and commands; ended before the servers they talk to. */
const procs = new ProcessSet();
/** The test's own redis-server. */
const servers = new ProcessSet();
let sim: SimulatorHandle | undefined;
let s3: RestartableS3rver | undefined;
let dep: E2eDeployment | undefined;
/** Set by the test that runs its own Redis: its data folder, removed after. */
let redisDir: string | undefined;

afterEach(async () => {
  await procs.killAll();
  await sim?.close();
  await s3?.close();
  await dep?.close({ privateRedis: redisDir !== undefined });
  await servers.killAll();
  if (redisDir) await rm(redisDir, { recursive: true, force: true });
  sim = undefined;
  s3 = undefined;
  dep = undefined;
  redisDir = undefined;
});

describe("outages around spawned workers", () => {
  it("Redis crashes mid-run and restarts 2 s later: no worker exits, every row archived once", {
    timeout: 60_000,
  }, async () => {
    redisDir = await mkdtemp(join(tmpdir(), "kie-redis-"));
    const redis = await startPrivateRedis(servers, redisDir);
    dep = await startDeployment({
      label: "redis",
      redisUrl: redis.url,
      report: () => `${procs.report()}\n${servers.report(5)}`,
    });
    const d = dep;
    sim = await startSimulator({
      apiKey: d.apiKey,
      latency: { minMs: 1_000, maxMs: 2_500 },
      recordLagMs: 200,
      rateLimit: { limit: 5, windowMs: 1_000 },
    });
    // KIE_LOCK_MS stays at 3 s, shorter than the outage and the restart: some locks lapse while Redis
    // is away, and a job must still not be taken twice.
    const env = {
      ...d.env,
      KIE_BASE_URL: sim.url,
      ARCHIVE_DIR: d.archiveDir,
      KIE_RATE_LIMIT: "5/1s",
    };
    const manifest = await d.writeManifest("redis", 30);
    expect((await procs.run(["enqueue", manifest, "--batch", "redis"], env)).code).toBe(0);

    const workers = [1, 2].map((n) => procs.start(`worker-${n}`, ["worker"], env));
    const atCrash = await d.waitFor(
      "rows at every stage",
      async () => {
        const s = await d.ledger.getBatch("redis");
        return s && s.archived >= 2 && s.queued + s.submitted + s.generating >= 5 ? s : undefined;
      },
      30_000,
    );
    await redis.crash();
    // The outage itself: its length is the behaviour under test, not a pause to let things settle.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await redis.restart();

    await d.waitFinished("redis", 40_000);
    for (const worker of workers) expect(worker.running, worker.tail()).toBe(true);
    const rows = await d.rows("redis");
    expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, 30);
    await expectFolderArchive(d.archiveDir, "redis", rows);
    // Submits whose lock lapsed in the outage stood back before creating (the job went on elsewhere).
    const stoodBack = workers.map((w) => w.stderr.split("went to another worker").length - 1);
    console.log(
      `Redis crash at ${JSON.stringify(atCrash)}; ${procs.errorLogs().length} error log lines during the outage; ` +
        `submits that found their job taken: ${stoodBack.join(" + ")}`,
    );
    if (process.env.DEBUG_E2E)
      console.log(
        procs
          .errorLogs()
          .map((l) => l.slice(0, 400))
          .join("\n"),
      );
  });

  it("S3 unreachable for 15 s while images are archived: every row archived once, bytes intact", {
    timeout: 60_000,
  }, async () => {
    dep = await startDeployment({ label: "s3down", report: () => procs.report() });
    const d = dep;
    s3 = await startRestartableS3rver();
    sim = await startSimulator({
      apiKey: d.apiKey,
      latency: { minMs: 300, maxMs: 1_500 },
      recordLagMs: 200,
      rateLimit: { limit: 10, windowMs: 1_000 },
    });
    const env = {
      ...d.env,
      KIE_BASE_URL: sim.url,
      KIE_RATE_LIMIT: "10/1s",
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
    const manifest = await d.writeManifest("s3down", 20);
    expect((await procs.run(["enqueue", manifest, "--batch", "s3down"], env)).code).toBe(0);

    const workers = [1, 2].map((n) => procs.start(`worker-${n}`, ["worker"], env));
    const atStop = await d.waitFor(
      "the first images archived",
      async () => {
        const s = await d.ledger.getBatch("s3down");
        return s && s.archived >= 2 && s.archived < 20 ? s : undefined;
      },
      30_000,
    );
    await s3.stop();
    const down = Date.now();
    // Rows keep finishing their generation and pile up in `archiving`, none fails.
    const piled = await d.waitFor(
      "rows waiting to be archived",
      async () => {
        const s = await d.ledger.getBatch("s3down");
        return s && s.archiving >= 3 ? s : undefined;
      },
      14_000,
    );
    // S3 stays away for the full 15 s: the outage's length is the behaviour under test.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 15_000 - (Date.now() - down))));
    const beforeRestart = (await d.ledger.getBatch("s3down"))!;
    expect(beforeRestart.failed).toBe(0);
    await s3.restart();
    const back = Date.now();

    await d.waitFinished("s3down", 40_000);
    for (const worker of workers) expect(worker.running, worker.tail()).toBe(true);
    const rows = await d.rows("s3down");
    expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, 20);
    await expectS3Archive(s3, "s3down", rows);
    console.log(
      `S3 down 15 s from ${JSON.stringify(atStop)}; piled ${piled.archiving}, ` +
        `${beforeRestart.archiving} archiving at restart, all archived ${Date.now() - back} ms after it`,
    );
  });
});
