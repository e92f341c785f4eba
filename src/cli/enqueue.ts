import { setFlagsFromString } from "node:v8";
// Not the app barrel: it loads the worker's and the dashboard's dependencies (start-up, memory).
import { droppedConnection, pingRedis } from "../app/connections.js";
import { connectProducer } from "../app/ledger-parts.js";
import { redisEndpoint } from "../app/redis-endpoint.js";
import type { Config } from "../config/index.js";
import { systemClock } from "../core/clock.js";
import { ValueError } from "../core/errors.js";
// prices.js, not the kie barrel: that loads the HTTP client and undici, which enqueue never uses.
import { type PriceTable, parsePriceOverrides } from "../kie/prices.js";
import { LedgerError } from "../ledger/index.js";
import { isManifestParseError, ManifestOptionError } from "../manifest/index.js";
import {
  ENQUEUE_V8_FLAGS,
  type EnqueueDeps,
  enqueue,
  isEnqueueInterruptedError,
  isStrictCheckError,
  parseBudgetCredits,
  parsePriority,
  removeTempFoldersNow,
} from "../producer/index.js";
import { UsageError } from "./errors.js";

export interface EnqueueFlags {
  batch?: string;
  format?: string;
  set?: string[];
  dryRun?: boolean;
  strict?: boolean;
  budget?: string;
  priority?: string;
  json?: boolean;
  allowPaths?: string[];
  /** Commander's `--no-reuse`: false when given. */
  reuse?: boolean;
}

/**
 * `kie-batch enqueue FILE`: exit 0 when at least one row is valid, 2 when none is (or `--strict`
 * found an invalid one, or the file cannot be parsed), 1 when Redis does not answer.
 */
export async function runEnqueueCommand(config: Config, file: string, flags: EnqueueFlags): Promise<void> {
  // Before the file is read: garbage collected sooner and not pretenured, for the peak RSS of a
  // big file. Nothing is bounded: live data still fits (see the constant).
  for (const flag of ENQUEUE_V8_FLAGS) setFlagsFromString(flag);
  // Ctrl-C (or a SIGTERM) ends the run at once, as before, but without leaving its temporary
  // folders (a million rows' copy, ~220 MB) behind: a finally does not run on a signal's exit.
  // What was written stays: the ledger's chunks are atomic, and running it again finishes the job.
  const interrupted = (signal: NodeJS.Signals) => {
    removeTempFoldersNow();
    process.stderr.write(
      `kie-batch enqueue: ${signal}: stopped; rows written so far stay in the batch, and running the same command again finishes it\n`,
    );
    process.exit(130);
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    const summary = await enqueue(
      {
        file,
        ...(flags.batch === undefined ? {} : { batch: flags.batch }),
        ...(flags.format === undefined ? {} : { format: flags.format }),
        sets: flags.set ?? [],
        dryRun: flags.dryRun === true,
        strict: flags.strict === true,
        ...(flags.budget === undefined ? {} : { budget: parseBudgetCredits(flags.budget) }),
        ...(flags.priority === undefined ? {} : { priority: parsePriority(flags.priority) }),
        json: flags.json === true,
        noReuse: flags.reuse === false,
        allowPaths: flags.allowPaths ?? [],
        apiFlavor: config.KIE_API_FLAVOR,
        ...(config.KIE_PRICES === undefined ? {} : { prices: parsePrices(config.KIE_PRICES) }),
      },
      redisDeps(config),
    );
    process.exitCode = summary.exitCode;
  } catch (error) {
    throw commandError(error, config);
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
}

/** KIE_PRICES as the user wrote it; a bad entry is a usage error (exit 2), before the file is read. */
function parsePrices(text: string): PriceTable {
  try {
    return parsePriceOverrides(text);
  } catch (error) {
    if (error instanceof ValueError) throw new ManifestOptionError("KIE_PRICES", error.message);
    throw error;
  }
}

function redisDeps(config: Config): EnqueueDeps {
  return {
    async connect(options) {
      // A dry run goes on without Redis: probe with a one-shot client first, since a failed
      // `openRedis` client holds the process for ioredis's 2 s disconnect timeout.
      if (options.timeoutMs !== undefined) await pingRedis(redisEndpoint(config), options.timeoutMs);
      return connectProducer(config, options);
    },
    out: process.stdout,
    progress: process.stderr,
    clock: systemClock,
  };
}

function commandError(error: unknown, config: Config): unknown {
  if (error instanceof ManifestOptionError) return new UsageError(error.message, 2);
  if (isManifestParseError(error)) return new UsageError(`${error.message}\nnothing was enqueued`, 2);
  if (isEnqueueInterruptedError(error) || isStrictCheckError(error))
    return new UsageError(error.message, error.exitCode);
  if (
    error instanceof LedgerError &&
    (error.code === "invalid_name" || error.code === "batch_purging" || error.code === "batch_gone")
  )
    return new UsageError(error.message, 2);
  // The connection dropped after the first PING: as clear as a Redis that never answered.
  return droppedConnection(error, redisEndpoint(config)) ?? error;
}
