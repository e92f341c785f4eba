/**
 * The worker's API keys (KIE_API_KEY, KIE_API_KEYS, KIE_ACCOUNTS): a KIE client and the fleet
 * state of each, registered for the deployment by short hash (never the key), each account's
 * rate window configured once, and the lanes the stages choose from.
 */
import { randomUUID } from "node:crypto";
import { type ApiKeyEntry, type Config, ConfigError } from "../config/index.js";
import type { Logger } from "../core/logger.js";
import { type Fleet, InFlight } from "../fleet/index.js";
import {
  KEY_LEASE_TTL_MS,
  KEY_ROLES,
  type KeyLeaseConflict,
  type KeyLeaseOptions,
  KeyLeases,
  type KeyRole,
} from "../fleet/key-lease.js";
import { type KeyRing, keyRing } from "../fleet/key-ring.js";
import { createFleetPort, type FleetPort, type FleetPortSettings } from "../fleet/port.js";
import type { KieClient } from "../kie/index.js";
import type { KieApi } from "../kie/types.js";
import { ledgerKeys } from "../ledger/index.js";
import { type FleetListener, fleetMetrics, observeFleet } from "../metrics/fleet.js";
import { instrumentKie } from "../metrics/kie.js";
import type { WorkerMetrics } from "../metrics/registry.js";
import { deploymentAccounts, registerAccount } from "../report/accounts.js";
import type { Stage } from "../worker/jobs.js";
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

/** What `registerKeys` leaves running: the worker's holds of its keys (closed with the worker). */
export interface RegisteredKeys {
  /** The deployment's default key: the key of a task recorded without one (`KeyRing.keylessId`). */
  readonly keylessId: string;
  readonly leases: KeyLeases;
  /** Frees a job's in-flight slot under any key id (a task whose key this worker lacks). */
  releaseInFlight(id: string, jobKey: string): Promise<void>;
  /** Frees a job's in-flight slot under every key registered for the deployment, and this worker's. */
  releaseInFlightEverywhere(jobKey: string): Promise<void>;
}

/**
 * Holds every key (its window mapping checked against every running worker's, this worker listed
 * among the deployment's holders), registers it for the deployment (operator commands find their
 * pauses by id) and writes KIE_RATE_LIMIT as each account's window, once per account, saying when
 * it replaced another. Refuses (ConfigError, naming short hashes and account names) a key whose
 * window the running workers put elsewhere: one key in two windows would double its account's rate.
 */
export async function registerKeys(
  redis: Redis,
  config: Config,
  keys: readonly WorkerKey[],
  log: Logger,
  /** `stages`: those the worker runs; it holds its keys for those that need a task's own key. */
  lease: Pick<KeyLeaseOptions, "ttlMs" | "everyMs"> & { stages?: readonly Stage[] } = {},
): Promise<RegisteredKeys> {
  const { stages } = lease;
  const rate = config.KIE_RATE_LIMIT;
  // The mapping outlives the last worker by more than a window: the old window's creates are gone.
  const ttlMs = lease.ttlMs ?? Math.max(KEY_LEASE_TTL_MS, 2 * rate.windowMs);
  let lastConflict: string | undefined;
  const leases = new KeyLeases(
    redis,
    keys.map((key) => ({ id: key.id, ...(key.fleet.windowId === key.id ? {} : { account: key.account }) })),
    {
      deployment: config.KIE_QUEUE_PREFIX,
      worker: randomUUID(),
      ttlMs,
      ...(stages === undefined ? {} : { roles: KEY_ROLES.filter((role) => stages.includes(role)) }),
      ...(lease.everyMs === undefined ? {} : { everyMs: lease.everyMs }),
      onRefreshProblem: ({ conflicts, error }) => {
        if (conflicts && conflicts.length > 0) {
          // The stored mapping lapsed and a worker with other KIE_ACCOUNTS wrote its own: the key
          // now counts in two windows. Named as the refused start names it (short hashes only),
          // once per conflict, not at every refresh while it lasts.
          const seen = JSON.stringify(conflicts);
          if (seen === lastConflict) return;
          lastConflict = seen;
          log.error(
            { keys: conflicts.map(({ id, mine, stored }) => ({ keyId: id, mine, stored })) },
            `API key window conflict found while refreshing this worker's hold of its keys: ${conflicts.map((c) => conflictText(c, ttlMs)).join("; ")}`,
          );
        } else {
          lastConflict = undefined;
          log.error({ err: error }, "refreshing this worker's hold of its API keys failed");
        }
      },
    },
  );
  const conflicts = await leases.claim();
  if (conflicts.length > 0) {
    await leases.close();
    throw new ConfigError(conflicts.map((conflict) => conflictText(conflict, ttlMs)));
  }
  leases.start();
  const keylessId = await defaultKeyId(redis, config.KIE_QUEUE_PREFIX, keys[0]!.id);
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
  const releaseInFlight = async (id: string, jobKey: string) => {
    await new InFlight(redis, { accountId: id, deployment: config.KIE_QUEUE_PREFIX }).release(jobKey);
  };
  const releaseInFlightEverywhere = async (jobKey: string) => {
    // A key removed from this worker's configuration is still registered: a dead run may have
    // taken its slot under it.
    const ids = await deploymentAccounts(
      redis,
      config.KIE_QUEUE_PREFIX,
      keys.map((key) => key.id),
    );
    await Promise.all([...ids].map((id) => releaseInFlight(id, jobKey)));
  };
  return { keylessId, leases, releaseInFlight, releaseInFlightEverywhere };
}

/**
 * A key whose window this worker and the running workers disagree on, and what to do: by its
 * short hash and account names, never the key. Start-up refuses with it; a refresh logs it.
 */
function conflictText({ id, mine, stored }: KeyLeaseConflict, ttlMs: number): string {
  return `API key ${id}: this worker counts it in ${mine} (KIE_ACCOUNTS), the running workers in ${stored}; KIE limits per account, and one key in two windows would pass its rate. Give every worker the same KIE_ACCOUNTS; to change it, stop every worker that uses the key: its window is forgotten ${Math.ceil(ttlMs / 1000)} s after the last one stops`;
}

/**
 * The deployment's default key: the first key of the first worker that started since tasks
 * record their key, kept under the ledger's root. A task recorded without a key (created before)
 * is that key's, whatever key a later worker has first.
 */
async function defaultKeyId(redis: Redis, prefix: string, firstId: string): Promise<string> {
  const key = `${ledgerKeys(prefix).root}:default-key`;
  await redis.set(key, firstId, "NX");
  return (await redis.get(key)) ?? firstId;
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
    /** What `registerKeys` gave: the key of tasks recorded without one, and who holds which key. */
    registered: RegisteredKeys;
  },
): KeyRing {
  const { metrics, listenersOf, settings, registered } = instrument;
  const extras = {
    keylessId: registered.keylessId,
    held: (id: string, role: KeyRole) => registered.leases.held(id, role),
    noteWait: (id: string, role: KeyRole) => registered.leases.noteWait(id, role),
    releaseInFlight: registered.releaseInFlight,
    releaseInFlightEverywhere: registered.releaseInFlightEverywhere,
  };
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
    extras,
  );
}
