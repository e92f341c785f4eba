/**
 * The wiring most Redis-backed tests repeat: one connection per file, a fresh key prefix per test
 * and its keys deleted after it; optionally a ledger on that prefix and a QueueSet beside it.
 * Each helper registers vitest hooks and returns an object whose fields are live from the first
 * `beforeEach` on (read them inside hooks and tests, never at module level).
 */
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { QueueSet } from "../../src/bull/queues.js";
import type { Clock } from "../../src/core/clock.js";
import { createLedger, type Ledger } from "../../src/ledger/index.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "./redis.js";

export interface RedisPrefixContext {
  redis: Redis;
  prefix: string;
}

/** A connection for the file and a prefix per test, whose keys are gone after it. */
export function redisPrefixContext(label?: string): RedisPrefixContext {
  const ctx = {} as RedisPrefixContext;
  beforeAll(() => {
    ctx.redis = testRedis();
  });
  afterAll(async () => {
    await ctx.redis.quit();
  });
  beforeEach(() => {
    ctx.prefix = uniquePrefix(label);
  });
  // Registered first, so (hooks run as a stack) it runs after the file's own afterEach.
  afterEach(async () => {
    await cleanupPrefix(ctx.redis, ctx.prefix);
  });
  return ctx;
}

export interface LedgerContext extends RedisPrefixContext {
  ledger: Ledger;
}

export interface LedgerContextOptions {
  label?: string;
  ttlMs?: number;
  clock?: Pick<Clock, "now">;
}

/** redisPrefixContext plus a fresh ledger on each test's prefix. */
export function ledgerContext(options: LedgerContextOptions = {}): LedgerContext {
  const ctx = redisPrefixContext(options.label) as LedgerContext;
  beforeEach(() => {
    ctx.ledger = createLedger(ctx.redis, {
      prefix: ctx.prefix,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  });
  return ctx;
}

export interface LedgerQueuesContext extends LedgerContext {
  queues: QueueSet;
}

/** ledgerContext plus BullMQ queues on the same prefix, closed before its keys are deleted. */
export function ledgerQueuesContext(options: LedgerContextOptions = {}): LedgerQueuesContext {
  const ctx = ledgerContext(options) as LedgerQueuesContext;
  beforeEach(() => {
    ctx.queues = new QueueSet({ connection: ctx.redis, queuePrefix: ctx.prefix });
  });
  afterEach(async () => {
    await ctx.queues.close();
  });
  return ctx;
}

/** The ids of the submit jobs that will still run (waiting, delayed, prioritized, active), sorted. */
export async function liveSubmitJobIds(ctx: Pick<LedgerQueuesContext, "queues">): Promise<string[]> {
  const jobs = await ctx.queues.queues.submit.getJobs(["wait", "delayed", "prioritized", "active"]);
  return jobs.map((job) => job.id ?? "").sort();
}
