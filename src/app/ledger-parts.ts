/**
 * The parts built on a Redis connection alone (ledger, result index, stage queues) and the
 * producer's backend over them. Apart from parts.ts so that `kie-batch enqueue` loads no archive
 * store, KIE client or fleet: start-up time and memory of the enqueue (issue 10). parts.ts
 * re-exports them for the other assemblies.
 */
import { createRedisBackend } from "../bull/producer-backend.js";
import { QueueSet } from "../bull/queues.js";
import type { Config } from "../config/index.js";
import { createLedger, createResultIndex, type Ledger, type ResultIndex } from "../ledger/index.js";
import type { ProducerBackend } from "../producer/types.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { openRedis } from "./connections.js";

export function buildLedger(redis: Redis, config: Config): Ledger {
  return createLedger(redis, { prefix: config.KIE_QUEUE_PREFIX, ttlMs: config.KIE_LEDGER_TTL });
}

/** The deployment's result index (reuse across batches), with KIE_REUSE_TTL. */
export function buildResultIndex(redis: Redis, config: Config): ResultIndex {
  return createResultIndex(redis, {
    prefix: config.KIE_QUEUE_PREFIX,
    flavor: config.KIE_API_FLAVOR,
    ttlMs: config.KIE_REUSE_TTL,
  });
}

export function buildQueues(redis: Redis, config: Config): QueueSet {
  return new QueueSet({
    connection: redis,
    queuePrefix: config.KIE_QUEUE_PREFIX,
    submitAttempts: config.KIE_SUBMIT_ATTEMPTS,
  });
}

/**
 * Refuses (LedgerError `old_layout`, and the connection dropped) when Redis holds batches of the
 * key layout before Redis Cluster, which this version would not see.
 */
export async function refuseOldLayout(redis: Redis, ledger: Pick<Ledger, "refuseOldLayout">): Promise<void> {
  try {
    await ledger.refuseOldLayout();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
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
  const ledger = buildLedger(redis, config);
  await refuseOldLayout(redis, ledger);
  return createRedisBackend({
    redis,
    ledger,
    queuePrefix: config.KIE_QUEUE_PREFIX,
    submitWindow: config.KIE_SUBMIT_WINDOW,
    queues: () => buildQueues(redis, config),
    ...(config.KIE_REUSE ? { results: buildResultIndex(redis, config) } : {}),
    onClose: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  });
}
