/**
 * A job's data stored only under its lock (`bull/job-data.ts`): the step that marks a submit's
 * create on the wire. A run whose lock lapsed and went to another worker must neither store its
 * own mark (it would then create unmarked: a death after it loses the attempt's uncertainty) nor
 * erase the mark of the run that holds the job now.
 */
import { randomUUID } from "node:crypto";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { saveDataIfOwned } from "../../src/bull/job-data.js";
import { bullPrefix } from "../../src/worker/jobs.js";
import { REDIS_URL } from "../helpers/redis.js";
import { type OpsFixture, opsFixture } from "./ops-helpers.js";

let fx: OpsFixture;
let connection: Redis;
let worker: Worker;

beforeEach(() => {
  fx = opsFixture();
  connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  worker = new Worker("submit", null, { connection, prefix: bullPrefix(fx.prefix, "submit") });
});
afterEach(async () => {
  await worker.close();
  await connection.quit();
  await fx.close();
});

async function takeJob(token: string) {
  await fx.queues.addSubmit({ batch: "b", rowId: "r1", resubmit: 0 });
  const job = await worker.getNextJob(token);
  if (!job) throw new Error("no job taken");
  return job;
}

const storedData = async (jobKey: string) => JSON.parse((await fx.redis.hget(jobKey, "data")) ?? "null");

describe("saveDataIfOwned", () => {
  it("stores the data and extends the lock while the token holds the job", async () => {
    const token = randomUUID();
    const job = await takeJob(token);
    const key = `${job.queueQualifiedName}:${job.id}`;
    await fx.redis.pexpire(`${key}:lock`, 1_000);
    expect(await saveDataIfOwned(connection, job, token, 60_000, { creating: 5 })).toBe(true);
    expect(await storedData(key)).toEqual({ creating: 5 });
    expect(job.data).toEqual({ creating: 5 });
    // Held another lock period, and off the stalled set like BullMQ's own extendLock.
    expect(await fx.redis.pttl(`${key}:lock`)).toBeGreaterThan(50_000);
    await fx.redis.sadd(`${job.queueQualifiedName}:stalled`, job.id!);
    expect(await saveDataIfOwned(connection, job, token, 60_000, { creating: 6 })).toBe(true);
    expect(await fx.redis.sismember(`${job.queueQualifiedName}:stalled`, job.id!)).toBe(0);
  });

  it("stores nothing once another worker holds the job, nor after its lock lapsed or the job is gone", async () => {
    const token = randomUUID();
    const job = await takeJob(token);
    const key = `${job.queueQualifiedName}:${job.id}`;
    const before = await storedData(key);

    // The lock lapsed and another worker took the job with its own token, and marked it.
    const other = randomUUID();
    await fx.redis.set(`${key}:lock`, other, "PX", 60_000);
    await fx.redis.hset(key, "data", JSON.stringify({ creating: 99 }));
    expect(await saveDataIfOwned(connection, job, token, 60_000, { creating: 7 })).toBe(false);
    expect(await saveDataIfOwned(connection, job, token, 60_000, before)).toBe(false);
    // The holder's mark stays; the lock stays the holder's; the late run's copy is not changed.
    expect(await storedData(key)).toEqual({ creating: 99 });
    expect(await fx.redis.get(`${key}:lock`)).toBe(other);
    expect(job.data).toEqual(before);

    // No lock at all (lapsed, not yet taken): nothing stored, and no lock taken back.
    await fx.redis.del(`${key}:lock`);
    expect(await saveDataIfOwned(connection, job, token, 60_000, { creating: 8 })).toBe(false);
    expect(await fx.redis.exists(`${key}:lock`)).toBe(0);

    // A job removed meanwhile (cancel, purge) is not written back into being.
    await fx.redis.set(`${key}:lock`, token, "PX", 60_000);
    await fx.redis.del(key);
    expect(await saveDataIfOwned(connection, job, token, 60_000, { creating: 9 })).toBe(false);
    expect(await fx.redis.exists(key)).toBe(0);
  });
});
