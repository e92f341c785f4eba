/**
 * The one composition root: configuration in, wired parts out. Commands call these; nothing else
 * constructs clients, stores or workers.
 */
import { resolve } from "node:path";
import type { Redis } from "ioredis";
import {
  ALERT_DEFAULTS,
  type AlertSettings,
  noAlerts,
  startAlerts,
  type WorkerAlerts,
} from "../alerts/index.js";
import { secretValues } from "../alerts/scrub.js";
import { createFolderStore, createS3Store } from "../archive/index.js";
import type { ArchiveStore } from "../archive/types.js";
import { QueueSet } from "../bull/queues.js";
import { DEFAULT_CONCURRENCY, StageWorkers } from "../bull/runner.js";
import { type Config, ConfigError, redactUrl, requireApiKey } from "../config/index.js";
import { fleetBackoff } from "../core/backoff.js";
import { systemClock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import { CREATE_MARGIN_MS, createFleet, type Fleet } from "../fleet/index.js";
import { createFleetPort } from "../fleet/port.js";
import { createKieClient, type KieClient } from "../kie/index.js";
import { connectRedis, createLedger, type Ledger } from "../ledger/index.js";
import {
  type AdminServer,
  collectFleetState,
  createWorkerMetrics,
  instrumentPorts,
  startAdminServer,
  stateSourceOf,
  type WorkerMetrics,
} from "../metrics/index.js";
import { createRedisBackend } from "../producer/redis-backend.js";
import type { ProducerBackend } from "../producer/types.js";
import { registerAccount } from "../report/accounts.js";
import { STAGES, type Stage } from "../worker/jobs.js";
import type { WorkerSettings } from "../worker/ports.js";
import { startWebhookServer, type WebhookServer } from "../worker/webhook.js";

/** Redis did not answer: commands exit 1 with this message, naming the URL without its password. */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
  constructor(url: string, reason: string) {
    super(
      `Redis is not answering at ${redactUrl(url)} (${reason}). Start one (e.g. \`redis-server\`, or \`docker compose up -d redis\`) or set REDIS_URL.`,
    );
  }
}

/**
 * A Redis connection that has answered a PING. `forWorker` connections wait through reconnects
 * (BullMQ needs that); command connections fail fast instead of hanging.
 */
export async function openRedis(
  config: Config,
  options: { forWorker?: boolean; timeoutMs?: number } = {},
): Promise<Redis> {
  const redis = connectRedis(config.REDIS_URL, {
    lazy: true,
    maxRetriesPerRequest: options.forWorker ? null : 1,
    connectionName: "kie-batch",
  });
  const timeoutMs = options.timeoutMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    redis.disconnect();
    throw new RedisUnavailableError(config.REDIS_URL, error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
  return redis;
}

export function buildLedger(redis: Redis, config: Config): Ledger {
  return createLedger(redis, { prefix: config.KIE_QUEUE_PREFIX, ttlMs: config.KIE_LEDGER_TTL });
}

export function buildQueues(redis: Redis, config: Config): QueueSet {
  return new QueueSet({
    connection: redis,
    queuePrefix: config.KIE_QUEUE_PREFIX,
    submitAttempts: config.KIE_SUBMIT_ATTEMPTS,
  });
}

export function buildKie(config: Config): KieClient {
  return createKieClient({
    baseUrl: config.KIE_BASE_URL,
    apiKey: requireApiKey(config),
    flavor: config.KIE_API_FLAVOR,
  });
}

export function buildFleet(redis: Redis, config: Config, options: { backoffScale?: number } = {}): Fleet {
  const scale = options.backoffScale ?? 1;
  return createFleet(redis, {
    apiKey: requireApiKey(config),
    createRate: config.KIE_RATE_LIMIT,
    createMarginMs: CREATE_MARGIN_MS,
    ...(scale === 1
      ? {}
      : { backoffSchedule: (consecutive, kind) => Math.max(1, fleetBackoff(consecutive, kind) * scale) }),
  });
}

/** What `enqueue` writes through: a fail-fast connection, the ledger, and the submit queue. */
export async function connectProducer(
  config: Config,
  options: { timeoutMs?: number } = {},
): Promise<ProducerBackend> {
  const redis = await openRedis(
    config,
    options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
  );
  return createRedisBackend({
    redis,
    ledger: buildLedger(redis, config),
    queuePrefix: config.KIE_QUEUE_PREFIX,
    queues: () => buildQueues(redis, config),
    onClose: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  });
}

/** S3 when S3_BUCKET is set, else the folder ARCHIVE_DIR (or `fallbackDir`, for the demo). */
export function buildStore(config: Config, fallbackDir?: string): ArchiveStore {
  if (config.S3_BUCKET) {
    return createS3Store({
      bucket: config.S3_BUCKET,
      prefix: config.S3_PREFIX,
      region: config.S3_REGION,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    });
  }
  const dir = config.ARCHIVE_DIR ?? fallbackDir;
  if (!dir) throw new ConfigError(["S3_BUCKET or ARCHIVE_DIR: the worker needs somewhere to archive images"]);
  return createFolderStore(resolve(dir));
}

/** Hosts images may be fetched from although they resolve to private addresses. */
export function downloadHosts(config: Config): string[] {
  const base = new URL(config.KIE_BASE_URL);
  return [base.port ? `${base.hostname}:${base.port}` : base.hostname, ...config.KIE_DOWNLOAD_HOSTS];
}

export interface WorkerRunOptions {
  stages?: readonly Stage[];
  concurrency?: Partial<Record<Stage, number>>;
  /** Webhook receiver port (also serves /healthz). */
  listen?: number;
  /** Address the webhook receiver binds. @defaultValue "0.0.0.0" (KIE must reach it) */
  listenHost?: string;
  /** The archive folder when neither S3_BUCKET nor ARCHIVE_DIR is set. */
  fallbackArchiveDir?: string;
  /** Overrides of the settings derived from `config` (tests shorten probes, rechecks and grace with it). */
  settings?: Partial<WorkerSettings>;
  /** Admin port: GET /metrics and /healthz (0 picks a free one). Unset: no admin server. */
  adminListen?: number;
  /** Address the admin server binds. @defaultValue "127.0.0.1" (metrics are not for the world) */
  adminHost?: string;
  /** Overrides of the alert defaults (tests shorten the watch and sweep intervals). */
  alerts?: Partial<Omit<AlertSettings, "url">>;
}

export interface RunningWorker {
  workers: StageWorkers;
  webhook?: WebhookServer;
  admin?: AdminServer;
  /** This worker's metrics (its own registry). */
  metrics: WorkerMetrics;
  /** KIE_ALERT_WEBHOOK_URL's alerts; a no-op without it. */
  alerts: WorkerAlerts;
  /** Stops taking jobs, releases those in hand, closes everything; resolves within the deadline. */
  close(deadlineMs?: number): Promise<void>;
}

/** Everything `kie-batch worker` runs, in one process. */
export async function startWorker(
  config: Config,
  log: Logger,
  options: WorkerRunOptions = {},
): Promise<RunningWorker> {
  requireApiKey(config);
  const redis = await openRedis(config, { forWorker: true });
  const ledger = buildLedger(redis, config);
  const queues = buildQueues(redis, config);
  const kie = buildKie(config);
  const store = buildStore(config, options.fallbackArchiveDir);
  const fleet = buildFleet(redis, config, { backoffScale: options.settings?.fleetBackoffScale ?? 1 });
  // Operator commands may run without KIE_API_KEY: they find the fleet's accounts (ids, never keys) here.
  await registerAccount(redis, config.KIE_QUEUE_PREFIX, fleet.accountId);

  const rate = config.KIE_RATE_LIMIT;
  const change = await fleet.createLimiter.configureRate(rate.limit, rate.windowMs);
  if (change.changed && change.previous) {
    log.warn(
      { from: change.previous, to: rate },
      `fleet rate limit changed from ${change.previous.limit}/${change.previous.windowMs}ms to ${rate.limit}/${rate.windowMs}ms`,
    );
  }

  // Metrics and alerts wrap the stages' ports: the stage logic knows nothing of them.
  const metrics = createWorkerMetrics();
  collectFleetState(metrics, stateSourceOf({ fleet, ledger, queues }), { log });
  const alerts = config.KIE_ALERT_WEBHOOK_URL
    ? startAlerts({
        settings: { ...ALERT_DEFAULTS, ...options.alerts, url: config.KIE_ALERT_WEBHOOK_URL },
        deployment: config.KIE_QUEUE_PREFIX,
        redis,
        ledger,
        getPause: () => fleet.pause.get(),
        account: fleet.accountId,
        log,
        secrets: secretValues(config),
        onOutcome: (event, outcome) => metrics.alerts.inc({ event, outcome }),
      })
    : noAlerts;
  const ports = instrumentPorts(
    {
      kie,
      store,
      ledger: alerts.ledger(ledger),
      fleet: createFleetPort(fleet, {
        pollRatePerSec: config.KIE_POLL_RATE,
        maxInFlight: config.KIE_MAX_IN_FLIGHT,
      }),
    },
    metrics,
    [alerts.fleet],
  );

  const workers = new StageWorkers({
    connection: redis,
    queuePrefix: config.KIE_QUEUE_PREFIX,
    ledger: ports.ledger,
    log,
    stages: options.stages ?? STAGES,
    concurrency: { ...DEFAULT_CONCURRENCY, ...options.concurrency },
    lockMs: config.KIE_LOCK_MS,
    deps: {
      kie: ports.kie,
      ledger: ports.ledger,
      store: ports.store,
      queues,
      clock: systemClock,
      fleet: ports.fleet,
      settings: {
        maxWaitMs: config.KIE_MAX_WAIT,
        maxResubmits: config.KIE_MAX_RESUBMITS,
        downloadHosts: downloadHosts(config),
        recordLagGraceMs: 60_000,
        pollFirstMs: config.KIE_POLL_INTERVAL,
        fileLifetimeMs: 14 * 86_400_000,
        ...(config.KIE_CALLBACK_URL ? { callbackUrl: config.KIE_CALLBACK_URL } : {}),
        ...options.settings,
      },
    },
  });
  await workers.waitUntilReady();
  const webhook =
    options.listen === undefined
      ? undefined
      : await startWebhookServer({
          port: options.listen,
          ...(options.listenHost ? { host: options.listenHost } : {}),
          ledger,
          pollQueue: queues.queues.poll,
          log,
          ...(config.KIE_WEBHOOK_HMAC_KEY ? { hmacKey: config.KIE_WEBHOOK_HMAC_KEY } : {}),
        });
  // Never on the webhook port: that one faces KIE, and metrics name batches and accounts.
  const admin =
    options.adminListen === undefined
      ? undefined
      : await startAdminServer({
          port: options.adminListen,
          ...(options.adminHost ? { host: options.adminHost } : {}),
          registry: metrics.registry,
          log,
        });

  let closing: Promise<void> | undefined;
  return {
    workers,
    ...(webhook ? { webhook } : {}),
    ...(admin ? { admin } : {}),
    metrics,
    alerts,
    close(deadlineMs = 25_000) {
      closing ??= (async () => {
        await Promise.all([webhook?.close(), admin?.close()]);
        await workers.close(deadlineMs);
        await alerts.close(); // after the stages: a batch they just finished is still told
        await queues.close();
        await kie.close();
        await store.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}
