/**
 * The operator assembly: what operator commands, the dashboard and the demo act through. One
 * fail-fast connection, and the parts built on it; closing it releases them all.
 */

import { stagePauseFlags } from "../bull/pause-flags.js";
import type { QueueSet } from "../bull/queues.js";
import type { PauseControl } from "../commands/pause.js";
import { apiKeysOf, type Config } from "../config/index.js";
import { type Clock, systemClock } from "../core/clock.js";
import { answerWithin } from "../core/deadline.js";
import { InFlight } from "../fleet/index.js";
import { unheldKeyWaits } from "../fleet/key-lease.js";
import type { Ledger } from "../ledger/index.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { accountNames, deploymentAccounts, resolveAccounts } from "../report/accounts.js";
import { type FleetState, readFleetState } from "../report/fleet-state.js";
import { openRedis } from "./connections.js";
import { buildArchivePause, buildLedger, buildPauseControls, buildQueues, refuseOldLayout } from "./parts.js";
import { Releasers } from "./releasers.js";

export interface Operator extends AsyncDisposable {
  config: Config;
  redis: Redis;
  ledger: Ledger;
  /** The stage queues, built on first use (building one writes its meta key). */
  queues(): QueueSet;
  /** The pause controls of the given accounts. */
  pauses(accountIds: readonly string[]): PauseControl[];
  /**
   * The pause state of KIE_API_KEY's account, else of every account registered for the prefix,
   * and the deployment's archive pause.
   */
  fleetState(): Promise<FleetState>;
  /**
   * Frees the in-flight slots (KIE_MAX_IN_FLIGHT) the batch's jobs hold, under every account of
   * the deployment (the registered ones and KIE_API_KEY's): its jobs may have run under any key.
   */
  releaseInFlight(batch: string, options?: { ownOnly?: boolean }): Promise<number>;
  /**
   * Frees the in-flight slots of these jobs (a cancel's removed jobs), under every account of the
   * deployment, as `releaseInFlight` does for a batch.
   */
  releaseInFlightOf(jobKeys: readonly string[]): Promise<number>;
  /** Whether a worker holds the submit job's lock now (BullMQ's `<id>:lock` key): a running job. */
  submitJobLocked(jobKey: string): Promise<boolean>;
  clock: Clock;
  /**
   * Closes the queues and the connection. Never rejects, and never takes much longer than
   * CLOSE_DEADLINE_MS: a Redis that died mid-command must not keep the process alive.
   */
  close(): Promise<void>;
}

/** How long closing gracefully may take before the connection is dropped. */
const CLOSE_DEADLINE_MS = 2_000;

/** Opens the operator's connection. @throws RedisUnavailableError when Redis does not answer */
export async function openOperator(config: Config): Promise<Operator> {
  const redis = await openRedis(config);
  const ledger = buildLedger(redis, config);
  await refuseOldLayout(redis, ledger);
  const releasers = new Releasers();
  releasers.push("redis connection", () => redis.quit());
  let queues: QueueSet | undefined;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= answerWithin(releasers.closeAll(), CLOSE_DEADLINE_MS, "closing")
      .catch(() => undefined)
      .finally(() => redis.disconnect());
    return closing;
  };
  const queuesOnce = () => {
    if (!queues) {
      const built = buildQueues(redis, config);
      // An EventEmitter without an 'error' listener throws; failures still reject the calls.
      for (const queue of Object.values(built.queues)) queue.on("error", () => {});
      releasers.push("queues", () => built.close());
      queues = built;
    }
    return queues;
  };
  /** Every account of the deployment: the registered ones and KIE_API_KEY's (a job may have run under any). */
  const accountsOfDeployment = async (): Promise<Set<string>> =>
    deploymentAccounts(
      redis,
      config.KIE_QUEUE_PREFIX,
      await resolveAccounts(redis, config.KIE_QUEUE_PREFIX, configuredKeys(config)),
    );
  /** The deployment's in-flight slots under one account. */
  const slotsOf = (accountId: string) =>
    new InFlight(redis, { accountId, deployment: config.KIE_QUEUE_PREFIX });
  return {
    config,
    redis,
    // Not the worker's waking ledger: a reservation `cancel` releases must not wake parked rows of
    // the batch it is cancelling (a woken row could be created before the walk reaches it). The
    // commands that mean to wake rows (`budget`, and `retry` through the reconciler) do so.
    ledger,
    queues: queuesOnce,
    pauses: (accountIds) => buildPauseControls(redis, accountIds),
    async releaseInFlight(batch, options) {
      let released = 0;
      for (const accountId of await accountsOfDeployment()) {
        released += await slotsOf(accountId).releaseBatch(batch, options);
      }
      return released;
    },
    async releaseInFlightOf(jobKeys) {
      if (jobKeys.length === 0) return 0;
      let released = 0;
      for (const accountId of await accountsOfDeployment()) {
        released += await slotsOf(accountId).releaseMany(jobKeys);
      }
      return released;
    },
    async submitJobLocked(jobKey) {
      return (await redis.exists(queuesOnce().queues.submit.toKey(`${jobKey}:lock`))) === 1;
    },
    async fleetState() {
      const ids = await resolveAccounts(redis, config.KIE_QUEUE_PREFIX, configuredKeys(config));
      const names = await accountNames(redis, config.KIE_QUEUE_PREFIX);
      return readFleetState(
        buildPauseControls(redis, ids, names),
        buildArchivePause(redis, config),
        stagePauseFlags(redis, config.KIE_QUEUE_PREFIX),
        async () =>
          (
            await unheldKeyWaits(
              redis,
              config.KIE_QUEUE_PREFIX,
              // The ids resolved above, and the registered ones (a removed key is only there).
              await deploymentAccounts(redis, config.KIE_QUEUE_PREFIX, ids),
            )
          ).map((wait) => ({
            accountId: wait.id,
            ...(names[wait.id] === undefined ? {} : { account: names[wait.id] }),
            stage: wait.role,
            lastAt: new Date(wait.lastAt).toISOString(),
          })),
      );
    },
    clock: systemClock,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** KIE_API_KEY and KIE_API_KEYS, as configured (a command acts on their accounts). */
function configuredKeys(config: Config): string[] {
  return apiKeysOf(config).map((entry) => entry.key);
}
