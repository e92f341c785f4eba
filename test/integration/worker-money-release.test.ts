/**
 * What a row holds goes back when it ends without a create: the reservation of a row the runner
 * fails after BullMQ gave up on its submit job (the handler's write awaited, so a closing process
 * waits for it), and the in-flight slots of a purged batch's jobs.
 */
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { QueueSet } from "../../src/bull/queues.js";
import { StageWorkers } from "../../src/bull/runner.js";
import { purgeBatch } from "../../src/commands/purge.js";
import { silentLogger } from "../../src/core/logger.js";
import { accountId, accountKey, InFlight } from "../../src/fleet/index.js";
import type { FleetPort } from "../../src/fleet/port.js";
import { bullPrefix } from "../../src/worker/jobs.js";
import type { StageDeps } from "../../src/worker/ports.js";
import { REDIS_URL } from "../helpers/redis.js";
import { Collector, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

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

/** Row r1's submit job, run by a real runner with one attempt until BullMQ gives up; `fleet` and `ledger` as the test sets them. */
async function giveUp(options: {
  batch: string;
  fleet: Partial<FleetPort>;
  ledger?: StageDeps["ledger"];
  /** Creating mark of the job as a worker that died left it (stored after the add). */
  creating?: number;
}) {
  const queues = new QueueSet({ connection: fx.redis, queuePrefix: fx.prefix, submitAttempts: 1 });
  await queues.addSubmit({ batch: options.batch, rowId: "r1", resubmit: 0 });
  if (options.creating !== undefined) {
    const jobHash = `${bullPrefix(fx.prefix, "submit")}:submit:${options.batch}/r1`;
    await fx.redis.hset(jobHash, "data", JSON.stringify({ creating: options.creating }));
  }
  const deps = {
    ledger: options.ledger ?? fx.ledger,
    fleet: {
      readGate: async () => ({ paused: null, backoffMs: 0 }),
      tryAcquireInFlight: async () => true,
      releaseInFlight: async () => {},
      ...options.fleet,
    },
    queues,
    clock: { now: () => Date.now(), sleep: async () => {} },
    settings: { pollFirstMs: 1_000 },
  } as unknown as StageDeps;
  const workers = new StageWorkers({
    connection: workerRedis,
    queuePrefix: fx.prefix,
    deps,
    ledger: fx.ledger,
    log: silentLogger(),
    stages: ["submit"],
    concurrency: { submit: 1, poll: 1, archive: 1 },
    lockMs: 5_000,
  });
  const failed = new Promise<void>((resolve) => workers.workers[0]?.once("failed", () => resolve()));
  await failed;
  await workers.close();
  await queues.close();
}

describe("a row failed without a create", () => {
  it("gives its reservation back when BullMQ gives up on its submit job, before the workers close", async () => {
    await fx.ledger.addRows("gu", [newRow("r1")], { budget: 100 });
    await giveUp({
      batch: "gu",
      fleet: {
        // Something unexpected after the reservation, before any create.
        createSlot: async () => {
          throw new Error("the rate window's script is missing");
        },
      },
    });
    // Read right after close(): the handler's writes are done, not merely started.
    expect(await fx.ledger.getRow("gu", "r1")).toMatchObject({ status: "failed", creditsReserved: 0 });
    expect(await fx.ledger.getBatch("gu")).toMatchObject({ failed: 1, creditsReserved: 0 });
  });
});

describe("a row cancelled while its submit job ran", () => {
  it("gives its reservation back when BullMQ gives up on that job (no create was out)", async () => {
    await fx.ledger.addRows("cx", [newRow("r1")], { budget: 100 });
    await giveUp({
      batch: "cx",
      fleet: {
        // The operator cancels while the job waits for its slot; then something unexpected.
        createSlot: async () => {
          await fx.ledger.transition("cx", "r1", { from: ["queued"], to: "cancelled" });
          throw new Error("the rate window's script is missing");
        },
      },
    });
    expect(await fx.ledger.getRow("cx", "r1")).toMatchObject({ status: "cancelled", creditsReserved: 0 });
    expect(await fx.ledger.getBatch("cx")).toMatchObject({ cancelled: 1, creditsReserved: 0, uncertain: 0 });
  });

  it("keeps it as uncertain when the job given up on still carries a create on the wire", async () => {
    await fx.ledger.addRows("cx", [newRow("r1")], { budget: 100 });
    // The job of a worker that died with its create on the wire, for a row reserved and then
    // cancelled; its next run cannot count the attempt (a Redis blip), and BullMQ gives up.
    await fx.ledger.reserveBudget("cx", "r1", 8);
    await fx.ledger.transition("cx", "r1", { from: ["queued"], to: "cancelled" });
    let blips = 1;
    const ledger = Object.create(fx.ledger) as typeof fx.ledger;
    ledger.keepUncertain = async (...args) => {
      if (blips-- > 0) throw new Error("Connection is closed.");
      return fx.ledger.keepUncertain(...args);
    };
    await giveUp({ batch: "cx", fleet: {}, ledger, creating: Date.now() - 5_000 });
    expect(await fx.ledger.getRow("cx", "r1")).toMatchObject({
      status: "cancelled",
      creditsReserved: 0,
      creditsUncertain: 8,
      uncertain: 1,
    });
    expect(await fx.ledger.getBatch("cx")).toMatchObject({ creditsReserved: 0, creditsUncertain: 8 });
  });
});

describe("purge", () => {
  it("releases the in-flight slots of the batch's jobs, and only those", async () => {
    const account = accountId(`purge-key-${fx.prefix}`);
    const inFlight = new InFlight(fx.redis, { accountId: account, deployment: fx.prefix });
    await fx.ledger.addRows("gone", [newRow("a"), newRow("b")]);
    await fx.ledger.addRows("kept", [newRow("a")]);
    for (const key of ["gone/a", "gone/b/r1", "kept/a"])
      expect(await inFlight.tryAcquire(key, 10)).toBe(true);
    try {
      const out = new Collector();
      const report = await purgeBatch(
        {
          ledger: fx.ledger,
          queues: fx.queues.queues,
          out,
          queuePrefix: fx.prefix,
          inFlight: { releaseBatch: (batch) => inFlight.releaseBatch(batch) },
        },
        "gone",
      );
      expect(report.inFlightReleased).toBe(2);
      expect(await inFlight.count()).toBe(1);
      expect(await inFlight.release("kept/a")).toBe(true);
      expect(out.lines()).toContain("2 in-flight slots (KIE_MAX_IN_FLIGHT) of the batch released");
    } finally {
      await fx.redis.del(accountKey(account, "in-flight"));
    }
  });
});
