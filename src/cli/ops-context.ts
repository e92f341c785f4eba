import { droppedConnection, type Operator, openOperator, redisEndpoint } from "../app/index.js";
import type { Config } from "../config/index.js";
import { LedgerError } from "../ledger/index.js";
import { isOpsError } from "../report/errors.js";
import { UsageError } from "./errors.js";

/** What an operator command gets: the operator assembly (one fail-fast connection and the parts built on it). */
export type OpsContext = Operator;

/**
 * Opens the operator assembly (a RedisUnavailableError, exit 1, when Redis does not answer), runs
 * `fn`, turns the commands' own errors into usage errors (exit 2), and closes everything, so the
 * process ends by itself.
 */
export async function withOps<T>(config: Config, fn: (ctx: OpsContext) => Promise<T>): Promise<T> {
  const ops = await openOperator(config);
  try {
    return await fn(ops);
  } catch (error) {
    throw commandError(error, config);
  } finally {
    await ops.close();
  }
}

function commandError(error: unknown, config: Config): unknown {
  if (isOpsError(error)) return new UsageError(error.message, error.exitCode);
  if (error instanceof LedgerError && (error.code === "invalid_name" || error.code === "batch_purging"))
    return new UsageError(error.message, 2);
  return droppedConnection(error, redisEndpoint(config)) ?? error;
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
