/**
 * The fetch watchdog on real Redis: a stage worker that stops fetching (here: paused under the
 * runner's feet, as a wedged fetch looks) while its queue has jobs ready is replaced; the job the
 * old worker holds stays its own (its lock renewed while it closes, past the lock's duration), the
 * new worker takes the rest, and every job runs exactly once.
 */
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StageWorkers } from "../../src/bull/runner.js";
import type { Ledger } from "../../src/ledger/index.js";
import type { Stage } from "../../src/worker/jobs.js";
import type { StageDeps } from "../../src/worker/ports.js";
import { capturingLogger } from "../helpers/capturing-logger.js";
import { REDIS_URL } from "../helpers/redis.js";
import { type OpsFixture, opsFixture } from "./ops-helpers.js";

const LOCK_MS = 1_000;

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

const archiveJob = (rowId: string) => ({
  batch: "wd",
  rowId,
  taskId: `task-${rowId}`,
  imageUrls: ["http://127.0.0.1:1/x.png"],
  completedAt: 1,
  tries: 0,
});

describe("a stage worker that stops fetching", () => {
  it("is replaced while its queue has jobs ready; its job in hand finishes there, once", async () => {
    // The archive stage reads the row first (an unknown row: the job is done). Each read is a run.
    const runs = new Map<string, number>();
    let releaseFirst: () => void = () => {};
    const firstHeld = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let firstTaken: () => void = () => {};
    const tookFirst = new Promise<void>((resolve) => {
      firstTaken = resolve;
    });
    let restOfThem: () => void = () => {};
    const restDone = new Promise<void>((resolve) => {
      restOfThem = resolve;
    });
    const ledger = {
      getRow: async (_batch: string, rowId: string) => {
        runs.set(rowId, (runs.get(rowId) ?? 0) + 1);
        if (rowId === "a") {
          firstTaken();
          await firstHeld;
        } else if (runs.get("b") && runs.get("c")) restOfThem();
        return undefined;
      },
    } as unknown as Ledger;
    const restarts: Stage[] = [];
    let replaced: () => void = () => {};
    const wasReplaced = new Promise<void>((resolve) => {
      replaced = resolve;
    });
    const { log, text } = capturingLogger();
    const workers = new StageWorkers({
      connection: workerRedis,
      queuePrefix: fx.prefix,
      deps: {
        ledger,
        storePause: { get: async () => null },
        clock: { now: () => Date.now(), sleep: async () => {} },
      } as unknown as StageDeps,
      ledger: fx.ledger,
      log,
      stages: ["archive"],
      concurrency: { submit: 1, poll: 1, archive: 2 },
      lockMs: LOCK_MS,
      fetchWatch: { stallMs: 500, everyMs: 100 },
      onRestart: (stage) => {
        restarts.push(stage);
        replaced();
      },
    });
    try {
      await workers.waitUntilReady();
      const first = workers.workers[0];
      await fx.queues.addArchive(archiveJob("a"));
      await tookFirst;
      // The fetch stops: a free slot, and it takes nothing more.
      await first?.pause(true);
      await fx.queues.addArchive(archiveJob("b"));
      await fx.queues.addArchive(archiveJob("c"));
      await wasReplaced;
      expect(workers.workers[0]).not.toBe(first);
      await restDone;
      // "a" is held past its lock's duration (a stalled check of the new worker runs every
      // second): only the old worker's renewals keep it from being taken again.
      const heldFrom = Date.now();
      while (Date.now() - heldFrom < 3 * LOCK_MS) await new Promise((resolve) => setTimeout(resolve, 250));
      expect(runs.get("a")).toBe(1);
      releaseFirst();
      await new Promise<void>((resolve) => first?.once("closed", () => resolve()));
    } finally {
      releaseFirst();
      await workers.close();
    }
    expect(restarts).toEqual(["archive"]);
    // The warning names what the watchdog decided on: "b" and "c" ready, "a" in hand of 2 slots.
    const warning = text()
      .split("\n")
      .find((line) => line.includes("replacing it"));
    expect(JSON.parse(warning!)).toMatchObject({ stage: "archive", ready: 2, inHand: 1, concurrency: 2 });
    expect(warning).toMatch(
      /archive worker took no job for \d+ ms while its queue had 2 jobs ready and it was running 1 of 2 \(a free slot\); replacing it/,
    );
    expect(Object.fromEntries(runs)).toEqual({ a: 1, b: 1, c: 1 });
    expect(await fx.queues.queues.archive.getJobCounts("waiting", "active", "delayed", "failed")).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
      failed: 0,
    });
  });
});
