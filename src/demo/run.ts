import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { PassThrough } from "node:stream";
import {
  connectProducer,
  describeEndpoint,
  type Operator,
  openOperator,
  RedisUnavailableError,
  Releasers,
  type RunningWorker,
  redisAnswers,
  redisEndpoint,
  startWorker,
} from "../app/index.js";
import { type Config, loadConfig } from "../config/index.js";
import { systemClock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import { redactUrl } from "../core/redact-url.js";
import { accountId, accountKeyPattern } from "../fleet/index.js";
import { enqueue } from "../producer/index.js";
import { scanKeys } from "../redis/keyspace.js";
import { exportResults } from "../report/results.js";
import type { BatchStatus } from "../report/status.js";
import { batchLines, watchLine } from "../report/status-text.js";
import { followBatch, Redrawer } from "../report/status-watch.js";
import { startSimulator } from "../simulator/index.js";
import { hasRedisServer, type LocalRedis, startLocalRedis } from "./local-redis.js";
import { type DemoS3, startDemoS3 } from "./s3.js";
import { EDIT_SAMPLE_MANIFEST, sampleManifest } from "./sample.js";

export interface DemoOptions {
  /** Rows to generate: the sample's 12, or more (cycled with new seeds). */
  rows: number;
  /** Archive to an in-process s3rver instead of a folder. */
  s3: boolean;
  /** Run the editing sample (examples/edit.csv: image-to-image and edit over examples/images/); `rows` is ignored. @defaultValue false */
  edit?: boolean;
  /** Where images, results and s3rver's files go. */
  outputDir: string;
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  log: Logger;
  /** Base environment (REDIS_URL, LOG_LEVEL...). */
  env: Record<string, string | undefined>;
}

/** The simulator's minutes pass in seconds: 30 s - 3 min generations take 0.5-3 s. */
const DEMO_TIME_SCALE = 60;
/** How long the demo waits for an answer at REDIS_URL before it starts a redis-server of its own. */
const REDIS_PROBE_MS = 2_000;
/** The demo's workers have nothing in hand at the end: a short shutdown deadline is plenty. */
const WORKER_CLOSE_DEADLINE_MS = 10_000;

/**
 * `kie-batch demo`: the whole product on embedded defaults. Redis at REDIS_URL (or a private
 * redis-server), the built-in simulator, the sample manifest through `enqueue`, the three stages
 * in-process, live progress, and a results file. Returns the exit code: 0 only if every row was
 * archived.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { out, log } = options;
  const say = (line: string) => out.write(`${line}\n`);
  // Everything started is released in reverse order; a failed release is logged and the rest go on.
  const releasers = new Releasers({ onError: ({ error }) => log.warn({ err: error }, "demo cleanup") });
  try {
    const redisUrl = options.env.REDIS_CLUSTER_NODES
      ? await ensureCluster(options.env, say)
      : await ensureRedis(options.env.REDIS_URL ?? "redis://127.0.0.1:6379", say, releasers);
    const apiKey = `demo-${randomUUID()}`;
    const sim = await startSimulator({
      apiKey,
      timeScale: DEMO_TIME_SCALE,
      latency: { minMs: 30_000, maxMs: 180_000 },
    });
    releasers.push("simulator", () => sim.close());
    say(`KIE simulator at ${sim.url} (generation minutes pass in seconds)`);

    const runId = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
    const runDir = resolve(options.outputDir, runId);
    await mkdir(runDir, { recursive: true });
    let s3: DemoS3 | undefined;
    if (options.s3) {
      const started = await startDemoS3(join(runDir, "s3rver"));
      releasers.push("s3rver", () => started.close());
      s3 = started;
      say(`s3rver at ${s3.endpoint}, bucket ${s3.bucket}`);
    }
    const config: Config = loadConfig({
      ...options.env,
      REDIS_URL: redisUrl,
      KIE_API_KEY: apiKey,
      KIE_BASE_URL: sim.url,
      KIE_QUEUE_PREFIX: `demo-${runId}`,
      KIE_POLL_INTERVAL: "500ms",
      KIE_CALLBACK_URL: undefined,
      // The editing sample needs the market API, and uploads its local images to the simulator.
      ...(options.edit ? { KIE_API_FLAVOR: "jobs", KIE_UPLOAD_BASE_URL: sim.url } : {}),
      ...(s3 ? s3.env : { ARCHIVE_DIR: join(runDir, "images"), S3_BUCKET: undefined }),
    });

    const manifest = options.edit
      ? EDIT_SAMPLE_MANIFEST
      : await sampleManifest(options.rows, join(runDir, "manifest.jsonl"));
    const batch = options.edit ? "demo-edit" : "demo";
    const summary = await enqueue(
      { file: manifest, batch, apiFlavor: config.KIE_API_FLAVOR },
      // enqueue's own summary suggests starting workers: here they run in this process.
      { connect: (o) => connectProducer(config, o), out: new PassThrough().resume(), clock: systemClock },
    );
    if (summary.enqueued === 0) throw new Error("the demo manifest enqueued nothing");
    say(
      `Enqueued ${summary.enqueued} rows of ${relative(process.cwd(), manifest) || manifest} into batch "${batch}" (at most ${summary.estimatedCredits} credits)`,
    );

    const ops = await openOperator(config);
    releasers.push("operator connection", () => ops.close());
    // After the workers stopped: they write the account's fleet keys until then.
    releasers.push("demo account's fleet keys", () => forgetAccount(ops, apiKey));
    const worker: RunningWorker = await startWorker(config, log);
    releasers.push("workers", () => worker.close(WORKER_CLOSE_DEADLINE_MS));
    say("");
    const finalStatus = await showProgress(ops, batch, out);

    const resultsFile = join(runDir, "results.jsonl");
    await exportResults(
      { ledger: ops.ledger },
      { batch, format: "jsonl", outFile: resultsFile, stdout: out },
    );
    say("");
    say(
      `${finalStatus.archived} of ${finalStatus.total} images archived, ${finalStatus.failed} failed, ${finalStatus.creditsSpent} credits spent (simulated).`,
    );
    if (s3) {
      say(
        `Images: s3://${s3.bucket}/${batch}/ (s3rver's files under ${relative(process.cwd(), s3.directory) || "."})`,
      );
    } else {
      say(`Images:  ${relative(process.cwd(), join(runDir, "images", batch)) || "."}/`);
    }
    say(`Results: ${relative(process.cwd(), resultsFile)}`);
    say(
      `Ledger:  KIE_QUEUE_PREFIX=${config.KIE_QUEUE_PREFIX} npx kie-batch status ${batch}   (kept ${Math.round(config.KIE_LEDGER_TTL / 86_400_000)} days)`,
    );
    if (!s3) {
      say(
        `Gallery: KIE_QUEUE_PREFIX=${config.KIE_QUEUE_PREFIX} ARCHIVE_DIR=${relative(process.cwd(), join(runDir, "images")) || "."} npx kie-batch dashboard   (then http://127.0.0.1:3000/batches/${batch})`,
      );
    }
    return finalStatus.archived === finalStatus.total ? 0 : 1;
  } finally {
    // Each failure was logged as it happened; the demo's outcome is the batch's.
    await releasers.closeAll().catch(() => undefined);
  }
}

/** The demo's throwaway API key leaves no fleet state (rate config, windows) behind in Redis. */
async function forgetAccount(ops: Operator, apiKey: string): Promise<void> {
  // Every key of one account shares its hash tag (one slot): one DEL per page, on a cluster too.
  await scanKeys(ops.redis, accountKeyPattern(accountId(apiKey)), async (keys) => {
    await ops.redis.del(...keys);
  });
}

/**
 * The Redis Cluster at REDIS_CLUSTER_NODES, which must answer: a cluster is never started here.
 * Returns REDIS_URL as configured (unused: the cluster's nodes win).
 */
async function ensureCluster(env: DemoOptions["env"], say: (line: string) => void): Promise<string> {
  const config = loadConfig({
    REDIS_CLUSTER_NODES: env.REDIS_CLUSTER_NODES,
    REDIS_PASSWORD: env.REDIS_PASSWORD,
  });
  const endpoint = redisEndpoint(config);
  if (!(await redisAnswers(endpoint, REDIS_PROBE_MS))) {
    throw new RedisUnavailableError(endpoint, `no answer within ${REDIS_PROBE_MS} ms`);
  }
  say(`Redis: ${describeEndpoint(endpoint)}`);
  return config.REDIS_URL;
}

/** Redis at `url`, or a private redis-server when none answers and one is installed. */
async function ensureRedis(url: string, say: (line: string) => void, releasers: Releasers): Promise<string> {
  loadConfig({ REDIS_URL: url }); // a malformed REDIS_URL is a configuration error, not a missing Redis
  if (await redisAnswers(url, REDIS_PROBE_MS)) {
    say(`Redis at ${redactUrl(url)}`);
    return url;
  }
  if (!(await hasRedisServer())) {
    throw new RedisUnavailableError(
      url,
      "and redis-server is not installed: `sudo apt-get install redis-server`, or `docker compose up -d redis`",
    );
  }
  const local: LocalRedis = await startLocalRedis();
  releasers.push("private redis-server", () => local.stop());
  say(`No Redis at ${redactUrl(url)}: started a private redis-server at ${local.url} (stopped at the end)`);
  return local.url;
}

/** Live progress until the batch finishes: bars redrawn on a TTY, a line per change otherwise. */
async function showProgress(ops: Operator, batch: string, out: DemoOptions["out"]): Promise<BatchStatus> {
  const drawer = out.isTTY ? new Redrawer(out) : undefined;
  let last = "";
  const { status } = await followBatch(
    {
      ledger: ops.ledger,
      clock: ops.clock,
      fleet: async () => ({ paused: null, accounts: [] }),
      queuePrefix: ops.config.KIE_QUEUE_PREFIX,
    },
    batch,
    (s) => {
      if (drawer) {
        drawer.draw(batchLines(s));
        return;
      }
      const line = watchLine(s, false);
      if (line !== last) out.write(`${line}\n`);
      last = line;
    },
    { intervalMs: drawer ? 250 : 500 },
  );
  return status;
}
