import { PassThrough } from "node:stream";
import { buildStore } from "../app/parts.js";
import { reconcileNow, syncedSweepClock } from "../app/reconciler.js";
import type { ArchiveStore } from "../archive/types.js";
import type { Config } from "../config/index.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { parsePort, parseWholeNumber } from "../core/values.js";
import { retryInScope } from "../dashboard/batch-routes.js";
import {
  checkAccess,
  DashboardAccessError,
  DashboardListenError,
  startDashboard,
} from "../dashboard/server.js";
import { UsageError } from "./errors.js";
import { interruptSignal, withOps } from "./ops-context.js";

export interface DashboardFlags {
  port?: string;
  host?: string;
  allowActions?: boolean;
  authToken?: string;
  trustProxy?: string;
}

/**
 * `kie-batch dashboard`: the batch overview at `/`, a page per batch with its images at
 * `/batches/NAME`, bull-board at `/queues`, until SIGINT/SIGTERM. Redis must answer at start
 * (exit 1 otherwise, as every command); later outages show as 503s.
 */
export async function runDashboardCommand(config: Config, log: Logger, flags: DashboardFlags): Promise<void> {
  const port = parsePort(flags.port ?? "3000", "--port");
  const trustProxy =
    flags.trustProxy === undefined ? 0 : parseWholeNumber(flags.trustProxy, "--trust-proxy", 0, 10);
  const host = flags.host ?? "127.0.0.1";
  const token = flags.authToken ?? config.KIE_DASHBOARD_TOKEN;
  // A host or actions the token does not cover are a usage error before anything connects.
  try {
    checkAccess({
      host,
      allowActions: flags.allowActions === true,
      ...(token === undefined ? {} : { authToken: token }),
    });
  } catch (error) {
    if (error instanceof DashboardAccessError) throw new UsageError(error.message, 2);
    throw error;
  }
  const interrupt = interruptSignal();
  // Images are read from the store the workers archive to; without one the pages show none.
  const store: ArchiveStore | undefined =
    config.S3_BUCKET || config.ARCHIVE_DIR ? buildStore(config) : undefined;
  try {
    await withOps(config, async (ctx) => {
      const dashboard = await startDashboard({
        port,
        host,
        queuePrefix: config.KIE_QUEUE_PREFIX,
        ledger: ctx.ledger,
        queues: ctx.queues().queues,
        fleet: () => ctx.fleetState(),
        ping: () => ctx.redis.ping(),
        clock: ctx.clock,
        allowActions: flags.allowActions === true,
        ...(token === undefined ? {} : { authToken: token }),
        ...(store ? { store } : {}),
        trustProxy,
        retry: async (batch, scope) => {
          // The Redis server's clock: the retried rows' stamps and the sweep's cutoffs.
          const clock = await syncedSweepClock(ctx.redis);
          return retryInScope(
            {
              ledger: ctx.ledger,
              queues: ctx.queues(),
              clock,
              out: new PassThrough().resume(), // its report goes to the page, not to stdout
              queuePrefix: config.KIE_QUEUE_PREFIX,
              reconcile: (name) =>
                reconcileNow(
                  {
                    ...ctx,
                    clock,
                    queues: ctx.queues(),
                    log: silentLogger(),
                    settleMs: config.KIE_RECONCILE_SETTLE,
                  },
                  name,
                ),
            },
            batch,
            scope,
          );
        },
        onError: (error, path) => log.warn({ err: error, path }, "dashboard request failed"),
      }).catch((error: unknown) => {
        if (error instanceof DashboardListenError) throw new UsageError(error.message, 1);
        if (error instanceof DashboardAccessError) throw new UsageError(error.message, 2);
        throw error;
      });
      process.stdout.write(
        `dashboard: ${dashboard.url} · queues (bull-board): ${dashboard.url}queues · queue prefix "${config.KIE_QUEUE_PREFIX}"${token ? " · token required" : ""}${store ? "" : " · no archive store configured (S3_BUCKET or ARCHIVE_DIR): no images"} · Ctrl-C to stop\n`,
      );
      await aborted(interrupt.signal);
      await dashboard.close();
      process.stdout.write("dashboard stopped\n");
    });
  } finally {
    interrupt.dispose();
    await store?.close();
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
