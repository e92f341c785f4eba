/**
 * The parts the assemblies (worker, operator, producer) are built from, each from the
 * configuration and an injected connection. Nothing outside app/ calls these constructors.
 */
import { resolve } from "node:path";
import { createFolderStore, createS3Store, type SweepOutcome } from "../archive/index.js";
import type { ArchiveStore } from "../archive/types.js";
import type { PauseControl } from "../commands/pause.js";
import { type Config, ConfigError, requireApiKey } from "../config/index.js";
import { fleetBackoff } from "../core/backoff.js";
import { systemClock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import {
  ArchivePause,
  CREATE_MARGIN,
  createFleet,
  type Fleet,
  FleetPause,
  type PauseKind,
} from "../fleet/index.js";
import { createKieClient, createUploadClient, type KieClient } from "../kie/index.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { InputImages } from "../worker/input-image.js";
import type { ReuseDeps, StoreGate } from "../worker/reuse.js";
import { buildResultIndex } from "./ledger-parts.js";

export {
  buildLedger,
  buildQueues,
  connectProducer,
  refuseOldLayout,
} from "./ledger-parts.js";

import { redisUploadRecords } from "./upload-records.js";

/** A KIE client of one key (`apiKey`: one of KIE_API_KEYS; KIE_API_KEY by default). */
export function buildKie(config: Config, apiKey = requireApiKey(config)): KieClient {
  return createKieClient({
    baseUrl: config.KIE_BASE_URL,
    apiKey,
    flavor: config.KIE_API_FLAVOR,
  });
}

/**
 * The File Upload API clients and the worker's uploads of local input images over them: one
 * client per API key, in the order of the worker's keys (a lane's index is its client's), the
 * fleet's upload records shared by all.
 */
export function buildInputImages(
  config: Config,
  apiKeys: readonly string[],
  redis: Redis,
): { images: InputImages; close(): Promise<void> } {
  const clients = apiKeys.map((apiKey) =>
    createUploadClient({ baseUrl: config.KIE_UPLOAD_BASE_URL, apiKey }),
  );
  const records = redisUploadRecords(redis, config.KIE_QUEUE_PREFIX);
  return {
    images: new InputImages({ uploader: clients[0]!, uploaders: clients, records, clock: systemClock }),
    close: async () => {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}

/** The fleet state of one key (KIE_API_KEY's by default); `account`: its KIE_ACCOUNTS name. */
export function buildFleet(
  redis: Redis,
  config: Config,
  options: { backoffScale?: number; apiKey?: string; account?: string | undefined } = {},
): Fleet {
  const scale = options.backoffScale ?? 1;
  return createFleet(redis, {
    apiKey: options.apiKey ?? requireApiKey(config),
    deployment: config.KIE_QUEUE_PREFIX,
    ...(options.account === undefined ? {} : { account: options.account }),
    createRate: config.KIE_RATE_LIMIT,
    createMarginMs: config.KIE_RATE_MARGIN ?? CREATE_MARGIN,
    ...(scale === 1
      ? {}
      : { backoffSchedule: (consecutive, kind) => Math.max(1, fleetBackoff(consecutive, kind) * scale) }),
  });
}

/** The deployment's archive pause (per queue prefix: the store is the deployment's). */
export function buildArchivePause(redis: Redis, config: Config): ArchivePause {
  return new ArchivePause(redis, { queuePrefix: config.KIE_QUEUE_PREFIX });
}

/** The pause controls of the given accounts, over an injected connection (the caller closes it). */
export function buildPauseControls(
  redis: Redis,
  accountIds: readonly string[],
  names: Readonly<Record<string, string>> = {},
): PauseControl[] {
  return accountIds.map((accountId) => {
    const pause = new FleetPause(redis, { accountId });
    const account = names[accountId];
    return {
      accountId,
      ...(account === undefined ? {} : { account }),
      get: () => pause.get(),
      pause: (kind: PauseKind, reason: string) => pause.pause(kind, reason),
      resume: () => pause.resume(),
    };
  });
}

/** S3 when S3_BUCKET is set, else the folder ARCHIVE_DIR (or `fallbackDir`, for the demo). */
export function buildStore(config: Config, fallbackDir?: string, log?: Logger): ArchiveStore {
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
  // A worker's store sweeps dead processes' temporary folders: what it removed, or could not, is
  // logged (nothing else would tell of a folder left for good).
  return createFolderStore(resolve(dir), log ? { onSweep: (outcome) => logSweep(log, outcome) } : {});
}

function logSweep(log: Logger, { removed, failed }: SweepOutcome): void {
  if (removed.length > 0)
    log.info(
      { folders: removed },
      "archive store: removed the temporary folders of worker processes gone for over an hour",
    );
  for (const { folder, error } of failed)
    log.warn(
      { err: error, folder },
      "archive store: a dead worker process's temporary folder could not be removed: remove it by hand (another user's files?)",
    );
}

/** Hosts images may be fetched from although they resolve to private addresses. */
export function downloadHosts(config: Config): string[] {
  const base = new URL(config.KIE_BASE_URL);
  return [base.port ? `${base.hostname}:${base.port}` : base.hostname, ...config.KIE_DOWNLOAD_HOSTS];
}

/** Reuse across batches (worker/reuse.ts): the result index, the store, the ledger, the archive store's gate. */
export function buildReuse(
  redis: Redis,
  config: Config,
  parts: Pick<ReuseDeps, "store" | "ledger"> & { storeGate: StoreGate },
): ReuseDeps {
  return { results: buildResultIndex(redis, config), ...parts, clock: systemClock };
}
