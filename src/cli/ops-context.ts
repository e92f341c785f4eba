import type { Redis } from "ioredis";
import { buildLedger, buildQueues, openRedis, RedisUnavailableError } from "../app/index.js";
import type { QueueSet } from "../bull/queues.js";
import { accountPauses } from "../commands/pause.js";
import type { Config } from "../config/index.js";
import { type Clock, systemClock } from "../core/clock.js";
import { type Ledger, LedgerError } from "../ledger/index.js";
import { resolveAccounts } from "../report/accounts.js";
import { isOpsError } from "../report/errors.js";
import { type FleetState, readFleetState } from "../report/fleet-state.js";
import { UsageError } from "./errors.js";

/** What an operator command gets: one fail-fast connection and the parts built on it. */
export interface OpsContext {
  config: Config;
  redis: Redis;
  ledger: Ledger;
  /** The stage queues, built on first use. */
  queues(): QueueSet;
  /** The pause state of KIE_API_KEY's account, else of every account registered for the prefix. */
  fleetState(): Promise<FleetState>;
  clock: Clock;
}

/**
 * Opens Redis (a RedisUnavailableError, exit 1, when it does not answer), runs `fn`, turns the
 * commands' own errors into usage errors (exit 2), and closes everything, so the process ends by
 * itself.
 */
export async function withOps<T>(config: Config, fn: (ctx: OpsContext) => Promise<T>): Promise<T> {
  const redis = await openRedis(config);
  let queues: QueueSet | undefined;
  const ctx: OpsContext = {
    config,
    redis,
    ledger: buildLedger(redis, config),
    queues() {
      if (!queues) {
        queues = buildQueues(redis, config);
        // An EventEmitter without an 'error' listener throws; failures still reject the calls.
        for (const queue of Object.values(queues.queues)) queue.on("error", () => {});
      }
      return queues;
    },
    async fleetState() {
      const ids = await resolveAccounts(redis, config.KIE_QUEUE_PREFIX, config.KIE_API_KEY);
      return readFleetState(accountPauses(redis, ids));
    },
    clock: systemClock,
  };
  try {
    return await fn(ctx);
  } catch (error) {
    throw commandError(error, config);
  } finally {
    // A Redis that died mid-command must not keep the process alive: closing gets a deadline.
    const close = async () => {
      await queues?.close();
      await redis.quit();
    };
    await withDeadline(close(), CLOSE_DEADLINE_MS).catch(() => undefined);
    redis.disconnect();
  }
}

/** How long closing the connection may take before it is dropped. */
const CLOSE_DEADLINE_MS = 2_000;

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Checks an argument before any connection is opened; its OpsError becomes a usage error (exit 2). */
export function parseArgument<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (isOpsError(error)) throw new UsageError(error.message, error.exitCode);
    throw error;
  }
}

function commandError(error: unknown, config: Config): unknown {
  if (isOpsError(error)) return new UsageError(error.message, error.exitCode);
  if (error instanceof LedgerError && error.code === "invalid_name") return new UsageError(error.message, 2);
  // The connection dropped after the first PING: as clear as a Redis that never answered.
  if (
    error instanceof Error &&
    (error.name === "MaxRetriesPerRequestError" || /ECONNREFUSED|Connection is closed/.test(error.message))
  ) {
    return new RedisUnavailableError(config.REDIS_URL, error.message);
  }
  return error;
}

/** Ctrl-C as an AbortSignal, for `--watch` and `--wait`; `dispose` removes the handler. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
