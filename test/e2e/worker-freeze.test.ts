/**
 * Frozen pages (issue 10) through spawned processes: `enqueue` of a 150-row manifest, a `worker`
 * on the simulator archiving it to a folder, then a worker whose reconciler sweeps every second
 * (KIE_RECONCILE_EVERY=1s, KIE_RECONCILE_SETTLE=1s) freezing the batch. `results` (CSV and JSONL)
 * read the same before and after, no row or body key is left, `status` still counts 150 archived,
 * a second `enqueue` of the same manifest adds nothing and no task is created again, and
 * `purge --yes` leaves no key of the batch.
 *
 * Two workers one after the other: the first sweeps every second but freezes nothing
 * (KIE_RECONCILE_SETTLE=10m), so the "before" results are read from row keys; with a 1 s settle
 * from the start the first pages would freeze while the last rows are still being archived. Its
 * period stays 1 s because the reconciler's lease is taken for a period and left to lapse when its
 * worker exits: a 10m period would keep the second worker from sweeping for ten minutes.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type E2eDeployment, simStats, spawnSimulator, startDeployment } from "../helpers/e2e-deployment.js";
import { ProcessSet } from "../helpers/processes.js";

const ROWS = 150;
const BATCH = "freeze";
const procs = new ProcessSet();
let dep: E2eDeployment | undefined;

afterEach(async () => {
  await procs.killAll();
  await dep?.close();
  dep = undefined;
});

/** Keys matching `pattern` on the test Redis, by SCAN. */
async function scanKeys(d: E2eDeployment, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await d.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("frozen pages, end to end", () => {
  it("a worker's sweep freezes an archived batch: results, status and a re-enqueue unchanged, purge leaves nothing", {
    timeout: 90_000,
  }, async () => {
    dep = await startDeployment({ label: "freeze", report: () => procs.report() });
    const d = dep;
    const url = await spawnSimulator(procs);
    const env = { ...d.env, KIE_BASE_URL: url, KIE_RATE_LIMIT: "2000/2s", ARCHIVE_DIR: d.archiveDir };
    const batchRoot = `{${d.prefix}:${BATCH}}:ledger`;
    const run = async (args: string[], extra: Record<string, string> = {}) => {
      const result = await procs.run(args, { ...env, ...extra });
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0);
      return result;
    };
    const results = async () => ({
      csv: (await run(["results", BATCH, "--format", "csv"])).stdout,
      jsonl: (await run(["results", BATCH, "--format", "jsonl"])).stdout,
    });

    const manifest = await d.writeManifest(BATCH, ROWS);
    const enqueued = await run(["enqueue", manifest, "--batch", BATCH, "--json"]);
    expect(JSON.parse(enqueued.stdout)).toMatchObject({ enqueued: ROWS, duplicates: 0 });

    // Phase 1: archive everything, freezing nothing.
    const first = procs.start("worker-archive", ["worker"], {
      ...env,
      KIE_RECONCILE_EVERY: "1s",
      KIE_RECONCILE_SETTLE: "10m",
    });
    await d.waitFinished(BATCH, 30_000);
    first.kill("SIGTERM");
    await first.waitForExit(15_000);
    expect(await d.ledger.getBatch(BATCH)).toMatchObject({ total: ROWS, archived: ROWS, failed: 0 });
    expect(await d.redis.hget(`${batchRoot}:batch`, "frozenTo")).toBeNull();
    expect(await scanKeys(d, `${batchRoot}:row:*`)).toHaveLength(ROWS);
    const before = await results();
    expect(before.csv.trim().split("\n")).toHaveLength(ROWS + 1);
    expect(before.jsonl.trim().split("\n")).toHaveLength(ROWS);
    const createsBefore = (await simStats(url)).creates;
    expect(createsBefore).toBe(ROWS);

    // Phase 2: a worker sweeping every second freezes the settled batch.
    const started = Date.now();
    procs.start("worker-freeze", ["worker"], {
      ...env,
      KIE_RECONCILE_EVERY: "1s",
      KIE_RECONCILE_SETTLE: "1s",
    });
    const [frozenTo, nextSeq] = await d.waitFor(
      "the batch to be frozen (frozenTo >= nextSeq)",
      async () => {
        const [to, next] = await d.redis.hmget(`${batchRoot}:batch`, "frozenTo", "nextSeq");
        return to !== null && Number(to) >= Number(next) ? [Number(to), Number(next)] : undefined;
      },
      20_000,
    );
    console.log(`frozen ${Date.now() - started} ms after the sweeping worker started`);
    expect(nextSeq).toBe(ROWS);
    expect(frozenTo).toBe(192); // three pages of 64
    expect(await d.redis.hget(`${batchRoot}:batch`, "frozen")).toBe(String(ROWS));
    expect(await scanKeys(d, `${batchRoot}:row:*`)).toEqual([]);
    expect(await scanKeys(d, `${batchRoot}:body:*`)).toEqual([]);
    expect((await scanKeys(d, `${batchRoot}:frozen:*`)).sort()).toEqual(
      [0, 1, 2].map((page) => `${batchRoot}:frozen:${page}`),
    );

    const after = await results();
    expect(after.csv).toBe(before.csv);
    expect(after.jsonl).toBe(before.jsonl);

    const status = await run(["status", BATCH, "--json"]);
    expect(JSON.parse(status.stdout)).toMatchObject({
      batch: BATCH,
      total: ROWS,
      archived: ROWS,
      queued: 0,
      failed: 0,
      finished: true,
    });
    expect((await run(["status", BATCH])).stdout).toContain(`${ROWS}/${ROWS} archived · 0 failed`);

    // The same manifest again: every row a duplicate, nothing queued, nothing created.
    const again = await run(["enqueue", manifest, "--batch", BATCH, "--json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({ enqueued: 0, duplicates: ROWS });
    await sleep(3_000); // three sweeps of the running worker
    expect(JSON.parse((await run(["status", BATCH, "--json"])).stdout)).toMatchObject({
      total: ROWS,
      archived: ROWS,
      queued: 0,
    });
    expect((await simStats(url)).creates).toBe(createsBefore);
    expect(await scanKeys(d, `${batchRoot}:row:*`)).toEqual([]);

    // Purge beside the running worker; two sweeps later still no key of the batch (ledger or job).
    const purged = await run(["purge", BATCH, "--yes"]);
    expect(purged.stdout + purged.stderr).toMatch(/150/);
    await sleep(2_000);
    expect(await scanKeys(d, `{${d.prefix}:${BATCH}}*`)).toEqual([]);
    expect(await scanKeys(d, `{${d.prefix}:*}*${BATCH}/*`)).toEqual([]);
    expect(await d.ledger.getBatch(BATCH)).toBeUndefined();
    expect(procs.errorLogs()).toEqual([]);
  });
});
