/**
 * The worker's API keys (KIE_API_KEY, KIE_API_KEYS, KIE_ACCOUNTS): a KIE client and the fleet
 * state of each, registered for the deployment by short hash (never the key), each account's
 * rate window configured once, and the lanes the stages choose from.
 */
import type { ApiKeyEntry, Config } from "../config/index.js";
import type { Logger } from "../core/logger.js";
import type { Fleet } from "../fleet/index.js";
import { type KeyRing, keyRing } from "../fleet/key-ring.js";
import { createFleetPort, type FleetPort, type FleetPortSettings } from "../fleet/port.js";
import type { KieClient } from "../kie/index.js";
import type { KieApi } from "../kie/types.js";
import { type FleetListener, fleetMetrics, observeFleet } from "../metrics/fleet.js";
import { instrumentKie } from "../metrics/kie.js";
import type { WorkerMetrics } from "../metrics/registry.js";
import { registerAccount } from "../report/accounts.js";
import { buildFleet, buildKie } from "./parts.js";

/** The deployment's connection, as the parts take it. */
type Redis = Parameters<typeof buildFleet>[0];

/** One key's parts; `id` is its short hash, `account` its account name (else `id`). */
export interface WorkerKey {
  readonly id: string;
  readonly account: string;
  readonly kie: KieClient;
  readonly fleet: Fleet;
}

/** A client and fleet state per key; builds no connection (the caller closes the clients). */
export function buildKeys(
  redis: Redis,
  config: Config,
  entries: readonly ApiKeyEntry[],
  options: { backoffScale?: number } = {},
): WorkerKey[] {
  return entries.map((entry) => {
    const fleet = buildFleet(redis, config, { ...options, apiKey: entry.key, account: entry.account });
    return {
      id: fleet.accountId,
      account: entry.account ?? fleet.accountId,
      kie: buildKie(config, entry.key),
      fleet,
    };
  });
}

/**
 * Registers every key for the deployment (operator commands find their pauses by id) and writes
 * KIE_RATE_LIMIT as each account's window, once per account, saying when it replaced another.
 */
export async function registerKeys(
  redis: Redis,
  config: Config,
  keys: readonly WorkerKey[],
  log: Logger,
): Promise<void> {
  const rate = config.KIE_RATE_LIMIT;
  const configured = new Set<string>();
  for (const key of keys) {
    await registerAccount(redis, config.KIE_QUEUE_PREFIX, key.id, key.account);
    if (configured.has(key.fleet.windowId)) continue;
    configured.add(key.fleet.windowId);
    const change = await key.fleet.createLimiter.configureRate(rate.limit, rate.windowMs);
    if (change.changed && change.previous) {
      log.warn(
        { from: change.previous, to: rate, account: key.account },
        `fleet rate limit changed from ${change.previous.limit}/${change.previous.windowMs}ms to ${rate.limit}/${rate.windowMs}ms`,
      );
    }
  }
}

/**
 * The lanes the stages choose from: the first key's ports as the caller instrumented them, the
 * others' instrumented the same way (KIE call metrics, fleet pause and backoff counts, alerts).
 */
export function keyLanes(
  keys: readonly WorkerKey[],
  first: { kie: KieApi; fleet: FleetPort },
  instrument: {
    metrics: WorkerMetrics;
    /** What else hears of a key's pauses and resumes (alerts naming that key). */
    listenersOf: (key: WorkerKey) => readonly FleetListener[];
    settings: FleetPortSettings;
  },
): KeyRing {
  const { metrics, listenersOf, settings } = instrument;
  return keyRing(
    keys.map((key, i) =>
      i === 0
        ? { id: key.id, account: key.account, ...first }
        : {
            id: key.id,
            account: key.account,
            kie: instrumentKie(key.kie, metrics),
            fleet: observeFleet(createFleetPort(key.fleet, settings), [
              fleetMetrics(metrics),
              ...listenersOf(key),
            ]),
          },
    ),
  );
}
