/** The worker assembly: everything `kie-batch worker` runs, in one process. */
import {
  ALERT_DEFAULTS,
  type AlertSettings,
  noAlerts,
  startAlerts,
  type WorkerAlerts,
} from "../alerts/index.js";
import { secretValues } from "../alerts/scrub.js";
import { archiveFromUrl, createDownloadAgent } from "../archive/index.js";
import { DEFAULT_CONCURRENCY, StageWorkers } from "../bull/runner.js";
import { type Config, requireApiKeys } from "../config/index.js";
import { systemClock } from "../core/clock.js";
import { armFailpoints } from "../core/failpoints.js";
import type { Logger } from "../core/logger.js";
import { recentlyOpen } from "../fleet/archive-pause.js";
import { createCallbackLimit } from "../fleet/callback-limit.js";
import { createFleetPort } from "../fleet/port.js";
import {
  type AdminServer,
  collectFleetState,
  createWorkerMetrics,
  instrumentPorts,
  startAdminServer,
  stateSourceOf,
  type WorkerMetrics,
} from "../metrics/index.js";
import { serverClock } from "../redis/server-clock.js";
import { storeGateOf } from "../worker/archive-gate.js";
import { withInlineArchive } from "../worker/archive-inline.js";
import { wakingLedger } from "../worker/budget-wake.js";
import { STAGES, type Stage } from "../worker/jobs.js";
import type { WorkerSettings } from "../worker/ports.js";
import { startWebhookServer, type WebhookServer } from "../worker/webhook.js";
import { openRedis } from "./connections.js";
import { buildKeys, keyLanes, registerKeys } from "./keys.js";
import {
  buildArchivePause,
  buildInputImages,
  buildLedger,
  buildQueues,
  buildReuse,
  buildStore,
  downloadHosts,
} from "./parts.js";
import { type Reconciler, type ReconcilerOptions, startReconciler } from "./reconciler.js";
import { Releasers } from "./releasers.js";

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
  /** Overrides of the reconciler's period (KIE_RECONCILE_EVERY) and settle time; tests shorten them. */
  reconcile?: Partial<Pick<ReconcilerOptions, "everyMs" | "settleMs" | "onSweep">>;
  /** Overrides of how long a hold of a key lasts and how often it is refreshed (key-lease.ts); tests shorten them. */
  keyLease?: { ttlMs?: number; everyMs?: number };
}

export interface RunningWorker extends AsyncDisposable {
  workers: StageWorkers;
  webhook?: WebhookServer;
  admin?: AdminServer;
  /** This worker's metrics (its own registry). */
  metrics: WorkerMetrics;
  /** KIE_ALERT_WEBHOOK_URL's alerts; a no-op without it. */
  alerts: WorkerAlerts;
  /**
   * Stops taking jobs, releases those in hand, closes everything; resolves within the deadline
   * (KIE_SHUTDOWN_DEADLINE by default). A part that fails to close does not keep the others open.
   */
  close(deadlineMs?: number): Promise<void>;
}

/** The stage settings `config` gives, before a caller's overrides. */
function workerSettings(config: Config): WorkerSettings {
  return {
    maxWaitMs: config.KIE_MAX_WAIT,
    maxResubmits: config.KIE_MAX_RESUBMITS,
    downloadHosts: downloadHosts(config),
    recordLagGraceMs: config.KIE_RECORD_LAG_GRACE,
    pollFirstMs: config.KIE_POLL_INTERVAL,
    fileLifetimeMs: config.KIE_FILE_LIFETIME,
    storeProbeMs: config.KIE_STORE_PROBE_INTERVAL,
    storeMinFreeBytes: config.KIE_ARCHIVE_MIN_FREE,
    ...(config.KIE_CALLBACK_URL ? { callbackUrl: config.KIE_CALLBACK_URL } : {}),
  };
}

/** Everything `kie-batch worker` runs, in one process. A start that fails half-way closes what it opened. */
export async function startWorker(
  config: Config,
  log: Logger,
  options: WorkerRunOptions = {},
): Promise<RunningWorker> {
  const apiKeys = requireApiKeys(config);
  if (config.KIE_CALLBACK_URL && !config.KIE_WEBHOOK_HMAC_KEY)
    log.warn(
      "KIE_CALLBACK_URL is set without KIE_WEBHOOK_HMAC_KEY: callbacks are accepted unsigned, so anyone who can reach the receiver may send them (each task's poll is still promoted at most once a minute); set KIE_WEBHOOK_HMAC_KEY",
    );
  armFailpoints(config.KIE_FAILPOINTS, log);
  const releasers = new Releasers({
    onError: ({ name, error }) => log.warn({ err: error, part: name }, `closing the ${name} failed`),
  });
  let deadlineMs = config.KIE_SHUTDOWN_DEADLINE;
  try {
    const redis = await openRedis(config, { forWorker: true });
    releasers.push("redis connection", () => redis.disconnect());
    const store = buildStore(config, options.fallbackArchiveDir, log);
    releasers.push("archive store", () => store.close());
    const settings = { ...workerSettings(config), ...options.settings };
    // One Agent for every download: kept-alive connections, each new one through the host guard.
    const downloads = createDownloadAgent(settings.downloadHosts);
    releasers.push("download connections", () => downloads.close());
    const keys = buildKeys(redis, config, apiKeys, {
      backoffScale: options.settings?.fleetBackoffScale ?? 1,
    });
    for (const key of keys) releasers.push("KIE client", () => key.kie.close());
    // KIE_API_KEY, else the first of KIE_API_KEYS: what no task's recorded key names.
    const { kie, fleet } = keys[0]!;
    // Uploads are free and their URLs public: any key's upload serves every key's creates; the
    // submit stage uploads with the first key whose gate lets uploads go (input-image-step.ts).
    const uploads = buildInputImages(
      config,
      apiKeys.map(({ key }) => key),
      redis,
    );
    releasers.push("upload client", () => uploads.close());
    const ledger = buildLedger(redis, config);
    // Batches of the key layout before Redis Cluster would sit unseen: say so, do not start.
    await ledger.refuseOldLayout();
    const queues = buildQueues(redis, config);
    releasers.push("queues", () => queues.close());
    const storePause = buildArchivePause(redis, config);
    // The archive stage and reuse read it at most once a second while archiving is not paused (not before every row).
    const openPause = recentlyOpen(storePause);
    // Operator commands may run without KIE_API_KEY: they find the fleet's accounts (ids, never keys) here.
    // Refuses a key the running workers count in another account's window (KIE_ACCOUNTS).
    // A holder of its keys for the stages it runs that need them (a poll, an archive's refresh).
    const stages = options.stages ?? STAGES;
    const registered = await registerKeys(redis, config, keys, log, { ...options.keyLease, stages });
    releasers.push("key holds", () => registered.leases.close());
    // By short hash and account name only: the keys themselves never reach a log.
    log.info({ keys: keys.map(({ id, account }) => ({ key: id, account })) }, `${keys.length} API key(s)`);

    // Metrics and alerts wrap the stages' ports: the stage logic knows nothing of them.
    const metrics = createWorkerMetrics();
    collectFleetState(metrics, stateSourceOf({ fleet, ledger, queues, keys }), { log });
    const alerts = config.KIE_ALERT_WEBHOOK_URL
      ? startAlerts({
          settings: { ...ALERT_DEFAULTS, ...options.alerts, url: config.KIE_ALERT_WEBHOOK_URL },
          deployment: config.KIE_QUEUE_PREFIX,
          redis,
          ledger,
          getPause: () => fleet.pause.get(),
          getArchivePause: () => storePause.get(),
          account: fleet.accountId,
          log,
          secrets: [...secretValues(config), ...apiKeys.map((entry) => entry.key)],
          onOutcome: (event, outcome) => metrics.alerts.inc({ event, outcome }),
        })
      : noAlerts;
    // After the stages: a batch they just finished is still told.
    releasers.push("alerts", () => alerts.close());
    const portSettings = { pollRatePerSec: config.KIE_POLL_RATE, maxInFlight: config.KIE_MAX_IN_FLIGHT };
    const ports = instrumentPorts(
      {
        kie,
        store,
        // Released reservations and settles wake rows parked over the budget.
        ledger: alerts.ledger(wakingLedger(ledger, queues, log)),
        fleet: createFleetPort(fleet, portSettings),
      },
      metrics,
      [alerts.fleet],
    );
    const lanes = keyLanes(keys, ports, {
      metrics,
      listenersOf: (key) => [alerts.fleetOf(key.id, () => key.fleet.pause.get())],
      settings: portSettings,
      registered,
    });

    // On a cluster the stage workers fetch through a connection of their own (`shortFailover`).
    const fetchRedis = config.REDIS_CLUSTER_NODES
      ? await openRedis(config, { forWorker: true, shortFailover: true })
      : redis;
    if (fetchRedis !== redis) releasers.push("stage workers' connection", () => fetchRedis.disconnect());
    const concurrency = { ...DEFAULT_CONCURRENCY, ...options.concurrency };
    const storeGate = storeGateOf({
      storePause: openPause,
      store: ports.store,
      clock: systemClock,
      settings,
    });
    const workers = new StageWorkers({
      connection: fetchRedis,
      queuePrefix: config.KIE_QUEUE_PREFIX,
      ledger: ports.ledger,
      log,
      stages,
      concurrency,
      lockMs: config.KIE_LOCK_MS,
      onRestart: (stage) => metrics.stageWorkerRestarts.inc({ stage }),
      // A poll that finds its task done archives in its own job when this process runs the archive
      // stage and one of that stage's slots is free (archive-inline.ts); else it adds the archive job.
      deps: withInlineArchive(
        {
          kie: ports.kie,
          ledger: ports.ledger,
          store: ports.store,
          storePause: openPause,
          queues,
          inputImages: uploads.images,
          copyImage: (copy) => archiveFromUrl({ ...copy, dispatcher: downloads }),
          clock: systemClock,
          fleet: ports.fleet,
          keys: lanes,
          ...(config.KIE_REUSE
            ? { reuse: buildReuse(redis, config, { store: ports.store, ledger: ports.ledger, storeGate }) }
            : {}),
          settings,
        },
        stages.includes("archive") ? concurrency.archive : 0,
      ),
    });
    // The reconciler is waited for after the stage workers closed (pushed before them), and only
    // told to stop before they start closing (the "reconciler stop" below): its sweep winding down
    // never keeps the stages taking jobs.
    let reconciler: Reconciler | undefined;
    releasers.push("reconciler", () => reconciler?.close());
    releasers.push("stage workers", () => workers.close(deadlineMs));
    await workers.waitUntilReady();
    reconciler = startReconciler({
      redis,
      ledger,
      queues,
      clock: serverClock(redis), // the rows' stamps are the Redis server's time
      log,
      everyMs: config.KIE_RECONCILE_EVERY,
      settleMs: config.KIE_RECONCILE_SETTLE,
      ...options.reconcile,
    });
    releasers.push("reconciler stop", () => reconciler?.stop());
    const webhook =
      options.listen === undefined
        ? undefined
        : await startWebhookServer({
            port: options.listen,
            ...(options.listenHost ? { host: options.listenHost } : {}),
            ledger,
            polls: queues,
            promotions: createCallbackLimit(redis, { accountId: fleet.accountId }),
            log,
            ...(config.KIE_WEBHOOK_HMAC_KEY ? { hmacKey: config.KIE_WEBHOOK_HMAC_KEY } : {}),
          });
    if (webhook) releasers.push("webhook server", () => webhook.close());
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
    if (admin) releasers.push("admin server", () => admin.close());

    const close = (deadline?: number) => {
      if (deadline !== undefined) deadlineMs = deadline;
      return releasers.closeAll();
    };
    return {
      workers,
      ...(webhook ? { webhook } : {}),
      ...(admin ? { admin } : {}),
      metrics,
      alerts,
      close,
      [Symbol.asyncDispose]: () => close(),
    };
  } catch (error) {
    await releasers.closeAll().catch(() => undefined);
    throw error;
  }
}
