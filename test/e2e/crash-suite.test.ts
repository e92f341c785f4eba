/**
 * The crash suite (issue 9): for every failpoint, a small batch with a budget runs on its own
 * simulator until a spawned worker dies at that point (KIE_FAILPOINTS=<point>=exit@1, a
 * process.exit(137) on the spot: no cleanup, as a SIGKILL), then a clean worker finishes it, and
 * the invariants must hold: every row final, creates <= recorded tasks + uncertain, the
 * simulator's charge <= the budget, every charged task id in the ledger or in a worker's log.
 * Then the same with Redis restarted mid-batch, and with the store refusing for a while.
 *
 * Cost: each case is a few seconds of spawned workers (200 ms polls, 2 s locks so a dead worker's
 * jobs come back fast, a fast simulator); a few cases run at once.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { FAILPOINTS, type FailpointName } from "../../src/core/failpoints.js";
import { CrashCase, type Expected } from "../helpers/crash-suite.js";
import { ProcessSet, ROOT, startPrivateRedis } from "../helpers/processes.js";
import { startS3rver } from "../helpers/s3rver.js";

const ROWS = 6;
/** A case takes seconds alone; the timeout also covers waiting for a lane on a busy machine. */
const CASE_TIMEOUT_MS = 300_000;
/** Credits per row without an acceleration level (the dearest price: what a reservation holds). */
const CREDITS_PER_ROW = 8;
/** Cases running at once: each is mostly waiting, but two cores are shared. */
const LANES = 3;
/**
 * The worker's default submit concurrency: at a crash, each of its submit slots may hold a create
 * on the wire, whose reservation the next run keeps as spent-uncertain (it may have been charged).
 */
const SUBMIT_SLOTS = 4;

/** Points reached only when a generation fails: those cases run with every task failing. */
const FAILING_GENERATION: ReadonlySet<FailpointName> = new Set([
  "poll.after-resubmit-queued",
  "poll.after-fail",
]);

/** A slot among LANES; released when the case ends. */
const lanes = (() => {
  let free = LANES;
  const waiting: (() => void)[] = [];
  return {
    async take(): Promise<() => void> {
      if (free > 0) free--;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      return () => {
        const next = waiting.shift();
        if (next) next();
        else free++;
      };
    },
  };
})();

const open = new Set<CrashCase>();
afterAll(async () => {
  await Promise.all([...open].map((c) => c.close()));
});

/** Runs `body` on a started case and checks it; the case is closed whatever happens. */
async function runCase(c: CrashCase, body: (c: CrashCase) => Promise<void>): Promise<void> {
  const release = await lanes.take();
  open.add(c);
  try {
    await c.start();
    await body(c);
  } finally {
    await c.close();
    open.delete(c);
    release();
  }
}

async function expectInvariants(c: CrashCase): Promise<void> {
  const outcome = await c.finish();
  const problems = c.check(outcome);
  console.log(`${c.describe(outcome)}${problems.length ? `; ${problems.length} problems` : ""}`);
  expect(problems, c.procs.report(10)).toEqual([]);
}

function pointCase(point: FailpointName): CrashCase {
  const failing = FAILING_GENERATION.has(point);
  const expected: Expected = failing ? "failed" : "archived";
  return new CrashCase({
    label: point.replace(".", "-"),
    rows: ROWS,
    // Room for one create per row (two with every generation failing and one resubmit) and one
    // uncertain attempt per submit slot of the worker that died.
    budget: ((failing ? 2 : 1) * ROWS + SUBMIT_SLOTS) * CREDITS_PER_ROW,
    expected,
    ...(failing ? { simulator: { failureRate: 1 }, env: { KIE_MAX_RESUBMITS: "1" } } : {}),
  });
}

describe.concurrent("crash suite: a worker dies at each failpoint, a clean worker finishes the batch", () => {
  it("every failpoint is placed exactly once in the stages (a point never hit would test nothing)", async () => {
    const placed = new Map<string, number>();
    const files = (await readdir(join(ROOT, "src"), { recursive: true })).filter((f) => f.endsWith(".ts"));
    for (const file of files) {
      const text = await readFile(join(ROOT, "src", file), "utf8");
      for (const match of text.matchAll(/failpoint(?:Stream)?\("([a-z]+\.[a-z-]+)"/g)) {
        placed.set(match[1]!, (placed.get(match[1]!) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(placed)).toEqual(Object.fromEntries(FAILPOINTS.map((name) => [name, 1])));
  });

  it.each(FAILPOINTS)(
    "%s: every row final, no charge past the budget, every task traced",
    {
      timeout: CASE_TIMEOUT_MS,
    },
    async (point) => {
      await runCase(pointCase(point), async (c) => {
        await c.crashAt(point);
        await expectInvariants(c);
      });
    },
  );

  it("Redis restarted mid-batch: the invariants hold", { timeout: CASE_TIMEOUT_MS }, async () => {
    const procs = new ProcessSet();
    const dir = await mkdtemp(join(tmpdir(), "kie-crash-redis-"));
    try {
      const redis = await startPrivateRedis(procs, dir);
      const c = new CrashCase({
        label: "redis-restart",
        rows: ROWS,
        budget: (ROWS + SUBMIT_SLOTS) * CREDITS_PER_ROW,
        expected: "archived",
        redis,
      });
      await runCase(c, async () => {
        c.startWorker("worker-1");
        await c.dep.waitFor(
          "two rows submitted",
          async () => (await c.dep.rows(c.batch)).filter((r) => r.taskIds.length > 0).length >= 2,
          90_000,
        );
        const atCrash = (await c.dep.ledger.getBatch(c.batch))!;
        await redis.crash();
        // Down for a moment, as a restart of a small Redis is: the workers' calls fail meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        await redis.restart();
        const summary = await c.dep.waitFinished(c.batch, 90_000);
        const outcome = await c.outcome(summary);
        const problems = c.check(outcome);
        console.log(`${c.describe(outcome)}${problems.length ? `; ${problems.length} problems` : ""}`);
        expect(problems, c.procs.report(10)).toEqual([]);
        // The restart hit a batch in motion.
        expect(atCrash.archived + atCrash.failed, JSON.stringify(atCrash)).toBeLessThan(ROWS);
      });
    } finally {
      await procs.killAll();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the store refusing for a while: rows wait in archiving, none fails, all archived", {
    timeout: CASE_TIMEOUT_MS,
  }, async () => {
    const s3 = await startS3rver({ bucket: "present" });
    const bucket = "crash-refusing";
    const c = new CrashCase({
      label: "store-refusing",
      rows: ROWS,
      budget: (ROWS + SUBMIT_SLOTS) * CREDITS_PER_ROW,
      expected: "archived",
      env: {
        ARCHIVE_DIR: "",
        // A bucket that does not exist yet: every write is refused (NoSuchBucket) until it does.
        S3_BUCKET: bucket,
        S3_ENDPOINT: s3.endpoint,
        S3_FORCE_PATH_STYLE: "true",
        S3_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
        // The store probe's "every minute", shortened.
        KIE_STORE_PROBE_INTERVAL: "1s",
      },
    });
    const client = new S3Client(s3.clientOptions);
    try {
      await runCase(c, async () => {
        c.startWorker("worker-1");
        await c.dep.waitFor(
          "a row to reach the store",
          async () => {
            const s = await c.dep.ledger.getBatch(c.batch);
            return s !== undefined && s.archiving + s.failed > 0;
          },
          90_000,
        );
        // The outage under test: the store refuses for this long (the minute, shortened).
        await new Promise((resolve) => setTimeout(resolve, 4_000));
        // It did refuse, and rows waited for it instead of failing.
        const during = (await c.dep.ledger.getBatch(c.batch))!;
        expect(during, JSON.stringify(during)).toMatchObject({ archived: 0, failed: 0 });
        expect(during.archiving, JSON.stringify(during)).toBeGreaterThan(0);
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
        const summary = await c.dep.waitFinished(c.batch, 90_000);
        const outcome = await c.outcome(summary);
        const problems = c.check(outcome);
        console.log(`${c.describe(outcome)}${problems.length ? `; ${problems.length} problems` : ""}`);
        expect(problems, c.procs.report(10)).toEqual([]);
      });
    } finally {
      client.destroy();
      await s3.close();
    }
  });
});
