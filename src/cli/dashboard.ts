import { isIP } from "node:net";
import type { Config } from "../config/index.js";
import type { Logger } from "../core/logger.js";
import { parsePort } from "../core/values.js";
import { DashboardListenError, startDashboard } from "../dashboard/server.js";
import { UsageError } from "./errors.js";
import { interruptSignal, withOps } from "./ops-context.js";

export interface DashboardFlags {
  port?: string;
  host?: string;
  allowActions?: boolean;
}

/**
 * `kie-batch dashboard`: the batch overview at `/`, bull-board at `/queues`, until SIGINT/SIGTERM.
 * Redis must answer at start (exit 1 otherwise, as every command); later outages show as 503s.
 */
export async function runDashboardCommand(config: Config, log: Logger, flags: DashboardFlags): Promise<void> {
  const port = parsePort(flags.port ?? "3000", "--port");
  const host = flags.host ?? "127.0.0.1";
  const interrupt = interruptSignal();
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
        readOnly: flags.allowActions !== true,
        onError: (error, path) => log.warn({ err: error, path }, "dashboard request failed"),
      }).catch((error: unknown) => {
        if (error instanceof DashboardListenError) throw new UsageError(error.message, 1);
        throw error;
      });
      process.stdout.write(
        `dashboard: ${dashboard.url} · queues (bull-board): ${dashboard.url}queues · queue prefix "${config.KIE_QUEUE_PREFIX}" · Ctrl-C to stop\n`,
      );
      if (!isLoopback(host)) {
        process.stderr.write(
          `kie-batch: warning: the dashboard has no login and now listens on ${host}: put it behind something that authenticates\n`,
        );
      }
      await aborted(interrupt.signal);
      await dashboard.close();
      process.stdout.write("dashboard stopped\n");
    });
  } finally {
    interrupt.dispose();
  }
}

function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
