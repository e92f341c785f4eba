/**
 * The batch through spawned `enqueue` and `worker` processes on a real Redis Cluster
 * (REDIS_CLUSTER_NODES: three masters, three replicas on loopback), with the master that holds
 * the batch's ledger and the submit and poll queues SIGKILLed mid-batch: its replica takes over,
 * no worker exits, every row is archived once, and the simulator saw exactly one create per row.
 * A worker whose fetch from a queue does not come back after the failover (BullMQ on a Cluster,
 * now and then) is replaced by the runner's fetch watchdog; the run says how many were.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedger, ledgerKeys, type RowRecord } from "../../src/ledger/index.js";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorHandle } from "../../src/simulator/types.js";
import { bullPrefix, type Stage } from "../../src/worker/jobs.js";
import { expectArchivedOnce, expectFolderArchive } from "../helpers/e2e-deployment.js";
import { ProcessSet } from "../helpers/processes.js";
import { uniquePrefix } from "../helpers/redis.js";
import { startTestCluster, type TestCluster } from "../helpers/redis-cluster.js";

const ROWS = 30;

const procs = new ProcessSet();
let cluster: TestCluster;
let client: Cluster;
let sim: SimulatorHandle | undefined;
let dir: string;

beforeAll(async () => {
  cluster = await startTestCluster({ nodeTimeoutMs: 1_000 });
  client = cluster.client();
  dir = await mkdtemp(join(tmpdir(), "kie-cluster-e2e-"));
}, 60_000);

afterAll(async () => {
  await procs.killAll();
  await sim?.close();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Polls the ledger (on the cluster) until `probe` answers; the error names `what` and what `more` says. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  more: () => Promise<string> = async () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${await more()}\n${procs.report()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A queue prefix and batch name whose batch ledger, submit queue and poll queue sit on one master:
 * the master killed below, so the ledger's writes and two stages' fetches go through a failover.
 */
async function placement(): Promise<{ prefix: string; batch: string; victim: number }> {
  const masterOfQueue = (prefix: string, stage: Stage) =>
    cluster.masterOf(`${bullPrefix(prefix, stage)}:${stage}`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const prefix = uniquePrefix("clu");
    const victim = await masterOfQueue(prefix, "poll");
    if ((await masterOfQueue(prefix, "submit")) !== victim) continue;
    for (let n = 0; n < 200; n++) {
      const batch = `clu${n}`;
      if ((await cluster.masterOf(ledgerKeys(prefix).batch(batch))) === victim)
        return { prefix, batch, victim };
    }
  }
  throw new Error("no queue prefix put the submit and poll queues on one master");
}

/** The fetch watchdog's replacements in the workers' logs: stage and how long it had starved. */
function replaced(stderr: string): Array<{ stage: string; starvedMs: number }> {
  return stderr
    .split("\n")
    .filter((line) => line.includes("replacing it"))
    .map((line) => JSON.parse(line) as { stage: string; starvedMs: number })
    .map(({ stage, starvedMs }) => ({ stage, starvedMs }));
}

describe("a batch on a Redis Cluster", () => {
  it("runs through spawned processes, and the master of its ledger and of two queues killed mid-batch loses nothing and pays nothing twice", {
    timeout: 90_000,
  }, async () => {
    const { prefix, batch: BATCH, victim } = await placement();
    const apiKey = `e2e-key-${randomUUID()}`;
    const archiveDir = join(dir, "archive");
    sim = await startSimulator({
      apiKey,
      latency: { minMs: 800, maxMs: 2_000 },
      recordLagMs: 200,
      rateLimit: { limit: 10, windowMs: 1_000 },
    });
    const env = {
      REDIS_URL: "redis://127.0.0.1:1", // never used: REDIS_CLUSTER_NODES wins
      REDIS_CLUSTER_NODES: cluster.seeds,
      KIE_QUEUE_PREFIX: prefix,
      KIE_API_KEY: apiKey,
      KIE_BASE_URL: sim.url,
      KIE_RATE_LIMIT: "10/1s",
      KIE_POLL_INTERVAL: "300ms",
      KIE_LOCK_MS: "3000",
      // A failover may lose a master's last writes (replication is asynchronous), a BullMQ job move
      // among them: the reconciler is what gives such a row its job back, so it sweeps often here.
      KIE_RECONCILE_EVERY: "1s",
      KIE_RECONCILE_SETTLE: "2s",
      ARCHIVE_DIR: archiveDir,
      LOG_LEVEL: "warn",
    };
    const lines = ["id,prompt,seed"];
    for (let i = 1; i <= ROWS; i++) lines.push(`r${i},"cluster: a lighthouse at dusk, study ${i}",${i}`);
    const manifest = join(dir, "cluster.csv");
    await writeFile(manifest, `${lines.join("\n")}\n`);

    const enqueued = await procs.run(["enqueue", manifest, "--batch", BATCH], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const ledger = createLedger(client, { prefix });
    expect((await ledger.getBatch(BATCH))?.total).toBe(ROWS);

    const workers = [1, 2].map((n) => procs.start(`worker-${n}`, ["worker"], env));
    const atKill = await waitFor(
      "rows archived and rows in flight",
      async () => {
        const s = await ledger.getBatch(BATCH);
        return s && s.archived >= 3 && s.queued + s.submitted + s.generating >= 5 ? s : undefined;
      },
      40_000,
    );
    // The master holding the batch's ledger (every transition of the batch needs it) and the submit
    // and poll queues (the rows in flight need their poll jobs fetched after the failover).
    const killedAt = Date.now();
    await cluster.kill(victim);
    await cluster.waitForFailover(victim);
    const failoverMs = Date.now() - killedAt;

    const done = await waitFor(
      "the batch to finish",
      async () => {
        const s = await ledger.getBatch(BATCH);
        return s && s.archived + s.failed + s.cancelled === s.total ? s : undefined;
      },
      60_000,
      async () => {
        const open: string[] = [];
        for await (const row of ledger.rows(BATCH)) {
          if (row.status === "archived") continue;
          const states: string[] = [];
          for (const stage of ["submit", "poll", "archive"] as const) {
            const queue = new Queue(stage, { connection: client, prefix: bullPrefix(prefix, stage) });
            const job = await queue.getJob(`${BATCH}/${row.id}`);
            const lock = await client.exists(`${bullPrefix(prefix, stage)}:${stage}:${BATCH}/${row.id}:lock`);
            states.push(
              `${stage}=${job ? `${await job.getState()} lock=${lock} attempts=${job.attemptsMade}` : "none"}`,
            );
            await queue.close();
          }
          open.push(
            `${row.id}: ${row.status} ${row.taskIds.join(",")} ${row.error ?? ""} ${states.join(" ")}`,
          );
        }
        return `rows not archived:\n${open.join("\n")}`;
      },
    );
    for (const worker of workers) expect(worker.running, worker.tail()).toBe(true);
    const rows: RowRecord[] = [];
    for await (const row of ledger.rows(BATCH)) rows.push(row);
    expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, ROWS);
    expect(sim.stats().creates, "creates == rows").toBe(ROWS);
    expect(done.archived).toBe(ROWS);
    await expectFolderArchive(archiveDir, BATCH, rows);
    console.log(
      `cluster e2e: killed master :${victim} at ${JSON.stringify({ archived: atKill.archived, queued: atKill.queued, inFlight: atKill.submitted + atKill.generating })}; ` +
        `failover ${failoverMs} ms; ${sim.stats().creates} creates for ${ROWS} rows; ${procs.errorLogs().length} error log lines; ` +
        `stage workers replaced: ${JSON.stringify(replaced(workers.map((w) => w.stderr).join("")))}`,
    );
    await procs.killAll();
  });
});
