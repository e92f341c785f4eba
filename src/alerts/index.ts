import type { Logger } from "../core/logger.js";
import type { ArchivePauseState, PauseState } from "../fleet/index.js";
import type { Ledger } from "../ledger/index.js";
import type { FleetListener } from "../metrics/fleet.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { ALERT_CLAIM_TTL_MS, type AlertClaims, redisAlertClaims } from "./claims.js";
import type { AlertEventName } from "./events.js";
import { fleetAlerts } from "./fleet.js";
import { alertingLedger } from "./ledger.js";
import { sweepLedger, UNARCHIVED_ALERT_AGE_MS } from "./ledger-sweep.js";
import { archivePauseWatcher, pauseWatcher } from "./pause-watch.js";
import { type Periodic, periodic } from "./periodic.js";
import { type PostJson, webhookOrigin, webhookPoster } from "./post.js";
import {
  ALERT_MAX_QUEUE,
  ALERT_TIMEOUT_MS,
  type AlertOutcome,
  type AlertSender,
  createAlertSender,
} from "./sender.js";

export { alertClaimKey } from "./claims.js";

/** Every knob of the alerts; all but `url` have defaults (tests shorten the intervals). */
export interface AlertSettings {
  /** KIE_ALERT_WEBHOOK_URL. */
  url: string;
  /** Per delivery. @defaultValue ALERT_TIMEOUT_MS (5 s) */
  timeoutMs: number;
  /** @defaultValue ALERT_MAX_QUEUE (100) */
  maxQueue: number;
  /**
   * How often the account's pause (catches `kie-batch pause/resume`) and the deployment's archive
   * pause are looked at. @defaultValue 15 s
   */
  pauseWatchMs: number;
  /** How often the batches are swept for late archives and recent finishes. @defaultValue 10 min */
  sweepEveryMs: number;
  /** @defaultValue UNARCHIVED_ALERT_AGE_MS (24 h) */
  unarchivedAfterMs: number;
  /**
   * The sweep tells batches finished this recently (once, by the claim): a batch finished by
   * `kie-batch cancel`, or by a worker that died before its alert went out. @defaultValue 20 min
   */
  recentFinishMs: number;
  /** @defaultValue ALERT_CLAIM_TTL_MS (30 days) */
  claimTtlMs: number;
}

export const ALERT_DEFAULTS: Omit<AlertSettings, "url"> = {
  timeoutMs: ALERT_TIMEOUT_MS,
  maxQueue: ALERT_MAX_QUEUE,
  pauseWatchMs: 15_000,
  sweepEveryMs: 10 * 60_000,
  unarchivedAfterMs: UNARCHIVED_ALERT_AGE_MS,
  recentFinishMs: 20 * 60_000,
  claimTtlMs: ALERT_CLAIM_TTL_MS,
};

export interface AlertsOptions {
  settings: AlertSettings;
  /** KIE_QUEUE_PREFIX. */
  deployment: string;
  redis: Redis;
  /** The plain ledger (reads only). */
  ledger: Pick<Ledger, "listBatches" | "oldestUnarchived">;
  /** The account's pause, read by the watcher. */
  getPause(): Promise<PauseState | null>;
  /** The deployment's archive pause (the store refuses), read by the watcher. Absent: not watched. */
  getArchivePause?: () => Promise<ArchivePauseState | null>;
  /** `accountId(KIE_API_KEY)`: never the key. */
  account: string;
  log: Logger;
  secrets: readonly string[];
  onOutcome?: (event: AlertEventName | "unknown", outcome: AlertOutcome) => void;
  /** Replaces the HTTP POST (tests). */
  post?: PostJson;
  claims?: AlertClaims;
}

/** What a worker does with alerts: decorate its ports, and stop. Without a URL, nothing at all. */
export interface WorkerAlerts {
  ledger(ledger: Ledger): Ledger;
  /** For `observeFleet`: pauses and probe resumes of this worker's stages. */
  fleet: FleetListener;
  /** The same for another API key of the worker: its alerts name that key's account id and read its pause. */
  fleetOf(account: string, getPause: () => Promise<PauseState | null>): FleetListener;
  /** Resolves when every queued alert is delivered or given up (tests). */
  idle(): Promise<void>;
  close(deadlineMs?: number): Promise<void>;
}

export const noAlerts: WorkerAlerts = {
  ledger: (ledger) => ledger,
  fleet: {},
  fleetOf: () => ({}),
  idle: async () => {},
  close: async () => {},
};

/**
 * Alerts for a worker: the sender, the decorators that feed it from the stages, a watcher of the
 * account's pause and a periodic sweep of the batches. Nothing here ever makes a stage wait.
 */
export function startAlerts(options: AlertsOptions): WorkerAlerts {
  const { settings, log } = options;
  const poster = options.post ? undefined : webhookPoster(settings.url, { timeoutMs: settings.timeoutMs });
  const sender: AlertSender = createAlertSender({
    deployment: options.deployment,
    claims: options.claims ?? redisAlertClaims(options.redis, options.deployment, settings.claimTtlMs),
    post: options.post ?? poster!.post,
    log: log.child({ component: "alerts" }),
    secrets: options.secrets,
    timeoutMs: settings.timeoutMs,
    maxQueue: settings.maxQueue,
    ...(options.onOutcome ? { onOutcome: options.onOutcome } : {}),
  });
  const watch = pauseWatcher(options.account);
  const watchArchive = archivePauseWatcher();
  const { getArchivePause } = options;
  const timers: Periodic[] = [
    periodic(
      async () => {
        for (const event of watch(await options.getPause())) sender.emit(event);
        if (getArchivePause) for (const event of watchArchive(await getArchivePause())) sender.emit(event);
      },
      settings.pauseWatchMs,
      log,
      "alerts: pause watch",
    ),
    periodic(
      async () => {
        const events = await sweepLedger(options.ledger, {
          unarchivedAfterMs: settings.unarchivedAfterMs,
          recentFinishMs: settings.recentFinishMs,
          now: Date.now(),
        });
        for (const event of events) sender.emit(event);
      },
      settings.sweepEveryMs,
      log,
      "alerts: batch sweep",
    ),
  ];
  log.info({ receiver: webhookOrigin(settings.url) }, "alerts on");

  let closing: Promise<void> | undefined;
  return {
    ledger: (ledger) => alertingLedger(ledger, sender),
    fleet: fleetAlerts(sender, options.account, options.getPause),
    fleetOf: (account, getPause) => fleetAlerts(sender, account, getPause),
    idle: () => sender.idle(),
    close(deadlineMs = 2_000) {
      closing ??= (async () => {
        // One deadline for both steps: a sweep waiting on a Redis that is gone must not hold the
        // shutdown, nor a receiver that hangs.
        const end = Date.now() + deadlineMs;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(timers.map((t) => t.stop())),
          new Promise((resolve) => {
            timer = setTimeout(resolve, deadlineMs);
          }),
        ]);
        clearTimeout(timer);
        await sender.close(Math.max(0, end - Date.now()));
        await poster?.close();
      })();
      return closing;
    },
  };
}
