/**
 * A queued submit job's hash on real Redis: every value within Redis's listpack limit (64 B), so
 * the hash keeps the compact encoding (issue 10), whoever added it (the producer's addBulk or the
 * queue set); and the stage workers still retry with the same backoff both a job of that form and
 * a job written by the previous version (whole data, BullMQ's built-in exponential backoff spelt
 * out in its options, the job id copied into them).
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { StageWorkers } from "../../src/bull/runner.js";
import { silentLogger } from "../../src/core/logger.js";
import type { Ledger } from "../../src/ledger/index.js";
import type { ProducerLedger } from "../../src/producer/types.js";
import { bullPrefix } from "../../src/worker/jobs.js";
import type { StageDeps } from "../../src/worker/ports.js";
import { REDIS_URL } from "../helpers/redis.js";
import { type OpsFixture, opsFixture } from "./ops-helpers.js";

let fx: OpsFixture;
let workerRedis: Redis;

beforeEach(() => {
  fx = opsFixture();
  workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
});
afterEach(async () => {
  await workerRedis.quit();
  await fx.close();
});

const jobHashKey = (id: string) => `${bullPrefix(fx.prefix, "submit")}:submit:${id}`;

async function hashOf(id: string) {
  const key = jobHashKey(id);
  return {
    fields: await fx.redis.hgetall(key),
    encoding: await fx.redis.call("OBJECT", "ENCODING", key),
    bytes: Number(await fx.redis.call("MEMORY", "USAGE", key, "SAMPLES", "0")),
  };
}

// Names as long as a real deployment's: a dated batch, a padded row id.
const BATCH = "catalogue-2026-12-06-spring-collection";
const ROW = "row-0000123456";

describe("a queued submit job's hash", () => {
  it("keeps every value within a listpack: no job id in its options, a named backoff, data {}", async () => {
    const backend = createRedisBackend({
      redis: fx.redis,
      ledger: {} as ProducerLedger,
      queuePrefix: fx.prefix,
      queues: () => fx.queues,
    });
    await backend.addSubmitJobs(BATCH, [ROW], 2_097_151);
    await fx.queues.addSubmit({ batch: BATCH, rowId: "row-0000123457", resubmit: 3 }, { priority: 1_000 });

    for (const [id, priority] of [
      [`${BATCH}/${ROW}`, "2097151"],
      [`${BATCH}/row-0000123457/r3`, "1000"],
    ] as const) {
      const { fields, encoding, bytes } = await hashOf(id);
      expect(fields).toMatchObject({ name: "submit", data: "{}", priority });
      expect(JSON.parse(fields.opts ?? "")).toEqual({
        attempts: 8,
        backoff: { type: "e2" },
        priority: Number(priority),
      });
      for (const value of Object.values(fields)) expect(Buffer.byteLength(value)).toBeLessThanOrEqual(64);
      expect(encoding).toBe("listpack");
      expect(bytes).toBeLessThan(400); // 700+ B as a hashtable
      // BullMQ still knows the job by its id and its priority (the budget's wake order).
      const job = await fx.queues.queues.submit.getJob(id);
      expect(job?.id).toBe(id);
      expect(job?.priority).toBe(Number(priority));
    }
    // The lower number runs first.
    const waiting = await fx.queues.queues.submit.getPrioritized();
    expect(waiting.map((job) => job.id)).toEqual([`${BATCH}/row-0000123457/r3`, `${BATCH}/${ROW}`]);
  });
});

describe("stage workers retrying a submit job", () => {
  it("back off 1-2 s before the first retry, for a job of the compact form and one written by the previous version", async () => {
    // The submit stage reads the row first: the first read of each row fails (a transient error,
    // retried by BullMQ), the second finds no row (the job is done).
    const runs = new Map<string, number[]>();
    let allRetried: () => void = () => {};
    const retried = new Promise<void>((resolve) => {
      allRetried = resolve;
    });
    const ledger = {
      getRow: async (batch: string, rowId: string) => {
        const key = `${batch}/${rowId}`;
        const times = runs.get(key) ?? [];
        times.push(Date.now());
        runs.set(key, times);
        if (times.length === 1) throw new Error("transient");
        if ([...runs.values()].every((t) => t.length >= 2) && runs.size === 2) allRetried();
        return undefined;
      },
    } as unknown as Ledger;
    // The previous version's job: whole data, options as it wrote them (a plain BullMQ queue).
    const old = new Queue("submit", { connection: fx.redis, prefix: bullPrefix(fx.prefix, "submit") });
    await old.add(
      "submit",
      { batch: "old", rowId: "r1", resubmit: 0 },
      {
        jobId: "old/r1",
        attempts: 8,
        backoff: { type: "exponential", delay: 2_000, jitter: 0.5 },
        priority: 1_000,
      },
    );
    await old.close();
    expect(JSON.parse((await hashOf("old/r1")).fields.opts ?? "")).toMatchObject({ jobId: "old/r1" });
    await fx.queues.addSubmit({ batch: "new", rowId: "r1", resubmit: 0 }, { priority: 1_000 });

    const workers = new StageWorkers({
      connection: workerRedis,
      queuePrefix: fx.prefix,
      deps: {
        ledger,
        clock: { now: () => Date.now(), sleep: async () => {} },
        // A run that finds no row gives back any in-flight slot of its job (submit-ends.ts).
        fleet: { releaseInFlight: async () => {} },
      } as unknown as StageDeps,
      ledger: fx.ledger,
      log: silentLogger(),
      stages: ["submit"],
      concurrency: { submit: 2, poll: 1, archive: 1 },
      lockMs: 5_000,
      fetchWatch: false,
    });
    try {
      await workers.waitUntilReady();
      await retried;
    } finally {
      await workers.close();
    }
    expect([...runs.keys()].sort()).toEqual(["new/r1", "old/r1"]);
    for (const [key, times] of runs) {
      expect(times, key).toHaveLength(2);
      const waited = times[1]! - times[0]!;
      // 2 s with jitter 0.5: [1,000, 2,000) ms, plus the fetch.
      expect(waited, key).toBeGreaterThanOrEqual(950);
      expect(waited, key).toBeLessThan(3_000);
    }
    expect(await fx.queues.queues.submit.getJobCounts("waiting", "active", "delayed", "failed")).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
      failed: 0,
    });
  });
});
