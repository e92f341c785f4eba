/**
 * One deployment for an end-to-end test of spawned processes: a unique queue prefix and a unique
 * API key (so the account's fleet keys are the test's own), a temporary folder, a ledger view
 * for assertions, a manifest writer, and checks that every row was archived exactly once with the
 * right bytes. `close()` removes the prefix's keys, the account's keys and the folder.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import { expect } from "vitest";
import { accountId, accountKeyPattern } from "../../src/fleet/index.js";
import { type BatchSummary, createLedger, type Ledger, type RowRecord } from "../../src/ledger/index.js";
import type { SimTask, SimulatorStats } from "../../src/simulator/types.js";
import type { ProcessSet } from "./processes.js";
import { cleanupPrefix, REDIS_URL, uniquePrefix } from "./redis.js";

export interface E2eDeployment {
  prefix: string;
  apiKey: string;
  /** Temporary folder of the test (manifests, archive, redis data). */
  dir: string;
  /** `<dir>/archive`: ARCHIVE_DIR of the folder runs. */
  archiveDir: string;
  redisUrl: string;
  redis: Redis;
  ledger: Ledger;
  /** The environment every spawned command of the deployment gets (no KIE_BASE_URL, no store). */
  env: Record<string, string>;
  /** Writes a CSV manifest of `count` rows (`r1`..`rN`, distinct prompts); returns its path. */
  writeManifest(name: string, count: number): Promise<string>;
  rows(batch: string): Promise<RowRecord[]>;
  /** Polls `probe` until it returns a value; the error names `what` and appends `report()`. */
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T>;
  /** Resolves once every row is archived, failed or cancelled. */
  waitFinished(batch: string, timeoutMs: number): Promise<BatchSummary>;
  /**
   * Removes the prefix's and the account's keys, then the folder. With `private`, the Redis is
   * the test's own and goes away with it: the client only disconnects (Redis may be down).
   */
  close(options?: { privateRedis?: boolean }): Promise<void>;
}

export async function startDeployment(
  options: { redisUrl?: string; label?: string; report?: () => string } = {},
): Promise<E2eDeployment> {
  const prefix = uniquePrefix(options.label ?? "e2e");
  const apiKey = `e2e-key-${randomUUID()}`;
  const dir = await mkdtemp(join(tmpdir(), "kie-e2e-"));
  const archiveDir = join(dir, "archive");
  const redisUrl = options.redisUrl ?? REDIS_URL;
  // Retries forever: a test that restarts Redis keeps its client.
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  redis.on("error", () => {});
  const ledger = createLedger(redis, { prefix });
  const report = options.report ?? (() => "");
  const env: Record<string, string> = {
    REDIS_URL: redisUrl,
    KIE_QUEUE_PREFIX: prefix,
    KIE_API_KEY: apiKey,
    KIE_POLL_INTERVAL: "300ms",
    KIE_LOCK_MS: "3000",
    LOG_LEVEL: "warn",
    AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED",
  };

  async function waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined | false>,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${report()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  return {
    prefix,
    apiKey,
    dir,
    archiveDir,
    redisUrl,
    redis,
    ledger,
    env,
    async writeManifest(name, count) {
      const lines = ["id,prompt,seed"];
      for (let i = 1; i <= count; i++) lines.push(`r${i},"${name}: a lighthouse at dusk, study ${i}",${i}`);
      const path = join(dir, `${name}.csv`);
      await writeFile(path, `${lines.join("\n")}\n`);
      return path;
    },
    async rows(batch) {
      const all: RowRecord[] = [];
      for await (const row of ledger.rows(batch)) all.push(row);
      return all;
    },
    waitFor,
    async waitFinished(batch, timeoutMs) {
      let last: BatchSummary | undefined;
      try {
        return await waitFor(
          `batch ${batch} to finish`,
          async () => {
            last = await ledger.getBatch(batch);
            return last && last.archived + last.failed + last.cancelled === last.total ? last : undefined;
          },
          timeoutMs,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\nlast summary: ${JSON.stringify(last)}`);
      }
    },
    async close(closeOptions = {}) {
      if (closeOptions.privateRedis) {
        redis.disconnect();
      } else {
        await cleanupPrefix(redis, prefix);
        const accountKeys = await redis.keys(accountKeyPattern(accountId(apiKey)));
        if (accountKeys.length > 0) await redis.del(...accountKeys);
        await redis.quit().catch(() => redis.disconnect());
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What the simulator shows of its creates: stats, and (in-process only) every task. */
export interface SimView {
  stats: SimulatorStats;
  /** Every task created, oldest first; without it, duplicates are judged by counts alone. */
  tasks?: SimTask[];
}

/**
 * The ledger says every row is archived, each from exactly one task, and the simulator agrees:
 * one create per row, except for rows counted `uncertain` (a create whose answer was lost, or
 * that was on the wire when its worker died: status and results show those). With `tasks`,
 * every create the ledger did not record must predate the row's recorded task: one made after it
 * would be a row paid for again after its taskId was recorded. Returns the unrecorded creates.
 */
export function expectArchivedOnce(rows: RowRecord[], sim: SimView, count: number): number {
  expect(rows).toHaveLength(count);
  const notArchived = rows.filter((r) => r.status !== "archived");
  expect(notArchived.map((r) => `${r.id}: ${r.status} ${r.error ?? ""}`)).toEqual([]);
  for (const row of rows) {
    expect(row.taskIds, `taskIds of ${row.id}`).toHaveLength(1);
    expect(row.sha256, `sha256 of ${row.id}`).toMatch(/^[0-9a-f]{64}$/);
  }
  const uncertain = rows.reduce((sum, r) => sum + r.uncertain, 0);
  const unrecorded = sim.stats.creates - count;
  expect(unrecorded, "creates the ledger did not record").toBeGreaterThanOrEqual(0);
  expect(unrecorded, "creates the ledger did not record").toBeLessThanOrEqual(uncertain);
  if (unrecorded === 0) {
    expect(Object.entries(sim.stats.createsByRequestHash).filter(([, n]) => n > 1)).toEqual([]);
  }
  if (sim.tasks) {
    expect(sim.tasks).toHaveLength(sim.stats.creates);
    const byPrompt = new Map(rows.map((r) => [r.prompt, r]));
    const createdAt = new Map(sim.tasks.map((t) => [t.taskId, t.createdAt]));
    const late: string[] = [];
    const extra = new Map<string, number>();
    for (const task of sim.tasks) {
      const row = byPrompt.get(String(task.params.prompt));
      expect(row, `task ${task.taskId} belongs to no row`).toBeDefined();
      if (!row || row.taskId === task.taskId) continue;
      extra.set(row.id, (extra.get(row.id) ?? 0) + 1);
      if (task.createdAt >= createdAt.get(row.taskId!)!)
        late.push(`${row.id}: ${task.taskId} after ${row.taskId}`);
    }
    expect(late, "rows created again after their recorded task").toEqual([]);
    const unshown = rows.filter((r) => (extra.get(r.id) ?? 0) > r.uncertain);
    expect(
      unshown.map((r) => `${r.id}: ${extra.get(r.id)} unrecorded creates, uncertain ${r.uncertain}`),
      "rows paid for twice without being counted uncertain",
    ).toEqual([]);
  }
  return unrecorded;
}

/**
 * The folder holds exactly one image and one sidecar per row (no temporary file: those live in
 * each process's temporary folder, `.kie-tmp/<process>/` under the root), and each image's bytes
 * hash to the sha256 the ledger recorded at its location. `killedWrites`: workers were SIGKILLed
 * mid-run, and a kill that lands inside a file write leaves that write's temporary files in the
 * dead process's folder (README, "Archive layout"; a later worker sweeps it an hour on): up to
 * that many are accepted, each named after a file of one of the batch's rows. Without it, every
 * process's folder is gone or empty.
 */
export async function expectFolderArchive(
  archiveDir: string,
  batch: string,
  rows: RowRecord[],
  options: { killedWrites?: number } = {},
): Promise<void> {
  const files = (await readdir(join(archiveDir, batch))).filter((f) => !f.startsWith("."));
  const hidden = (await readdir(join(archiveDir, batch))).filter((f) => f.startsWith("."));
  expect(hidden.filter((f) => f.endsWith(".tmp"))).toEqual([]);
  const folders = await readdir(join(archiveDir, ".kie-tmp")).catch(() => []);
  const temps = (
    await Promise.all(folders.map((folder) => readdir(join(archiveDir, ".kie-tmp", folder)).catch(() => [])))
  )
    .flat()
    .filter((name) => name.endsWith(".tmp"));
  if (options.killedWrites === undefined) expect(temps).toEqual([]);
  else {
    expect(temps.length, temps.join(", ")).toBeLessThanOrEqual(options.killedWrites);
    const targets = new Set(
      rows.flatMap((r) => [`${r.id}.png`, `${r.id}.json`].flatMap((name) => [name, `.${name}.meta.json`])),
    );
    // `<target>.<counter>.tmp`, the folder store's temporary name (temp-folder.ts).
    for (const temp of temps) expect(targets.has(temp.replace(/\.[0-9a-z]+\.tmp$/, "")), temp).toBe(true);
  }
  const expected = rows.flatMap((r) => [`${r.id}.json`, `${r.id}.png`]).sort();
  expect(files.sort()).toEqual(expected);
  for (const row of rows) {
    expect(row.location).toBe(join(archiveDir, batch, `${row.id}.png`));
    const bytes = await readFile(row.location!);
    expect(bytes.length, `bytes of ${row.id}`).toBe(row.bytes);
    expect(sha256(bytes), `sha256 of ${row.id}`).toBe(row.sha256);
    const sidecar = JSON.parse(await readFile(join(archiveDir, batch, `${row.id}.json`), "utf8"));
    expect(sidecar).toMatchObject({ id: row.id, taskId: row.taskId, sha256: row.sha256 });
  }
}

/** The same for an S3 bucket: one object per image and sidecar, bytes matching the ledger. */
export async function expectS3Archive(
  s3: { endpoint: string; bucket: string },
  batch: string,
  rows: RowRecord[],
): Promise<void> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${batch}/`, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) keys.push(object.Key!);
      token = page.NextContinuationToken;
    } while (token);
    const expected = rows.flatMap((r) => [`${batch}/${r.id}.json`, `${batch}/${r.id}.png`]).sort();
    expect(keys.sort()).toEqual(expected);
    for (const row of rows) {
      expect(row.location).toBe(`s3://${s3.bucket}/${batch}/${row.id}.png`);
      const object = await client.send(
        new GetObjectCommand({ Bucket: s3.bucket, Key: `${batch}/${row.id}.png` }),
      );
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      expect(bytes.length, `bytes of ${row.id}`).toBe(row.bytes);
      expect(sha256(bytes), `sha256 of ${row.id}`).toBe(row.sha256);
      expect(object.Metadata?.["task-id"]).toBe(row.taskId);
    }
  } finally {
    client.destroy();
  }
}

export function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * `kie-batch simulate --port 0` as a process of `procs`, with `args` after it (each e2e test its
 * own rate limit and latency); resolves with its URL.
 */
export async function spawnSimulator(
  procs: ProcessSet,
  args: readonly string[] = ["--rate-limit", "2000/2s", "--latency", "100ms-400ms"],
): Promise<string> {
  const sim = procs.start("simulate", ["simulate", "--port", "0", ...args], {});
  const [, url] = await sim.waitForOutput(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return url!;
}

/** The simulator's counters (creates, 429s, creates by request hash...). */
export async function simStats(url: string): Promise<SimulatorStats> {
  const response = await fetch(`${url}/__sim/stats`);
  return (await response.json()) as SimulatorStats;
}
