import { startWorker } from "../app/index.js";
import type { Config } from "../config/index.js";
import type { Logger } from "../core/logger.js";
import { parsePort, parseWholeNumber } from "../core/values.js";
import { STAGES, type Stage } from "../worker/jobs.js";
import { UsageError } from "./errors.js";
import { onShutdown } from "./signals.js";

export interface WorkerFlags {
  stages?: string;
  concurrencySubmit?: string;
  concurrencyPoll?: string;
  concurrencyArchive?: string;
  listen?: string;
  adminListen?: string;
  adminHost?: string;
}

/** How long past KIE_SHUTDOWN_DEADLINE the process waits for the close before it exits anyway. */
const HARD_STOP_AFTER_MS = 3_000;

/** `kie-batch worker`: runs the chosen stages until SIGTERM/SIGINT, then exits 0 within 30 s. */
export async function runWorkerCommand(config: Config, log: Logger, flags: WorkerFlags): Promise<void> {
  const stages = parseStages(flags.stages);
  const concurrency: Partial<Record<Stage, number>> = {};
  for (const [stage, value] of [
    ["submit", flags.concurrencySubmit],
    ["poll", flags.concurrencyPoll],
    ["archive", flags.concurrencyArchive],
  ] as const) {
    if (value !== undefined) concurrency[stage] = parseWholeNumber(value, `--concurrency-${stage}`, 1);
  }
  const listen = flags.listen === undefined ? undefined : parsePort(flags.listen, "--listen");
  const adminListen =
    flags.adminListen === undefined ? undefined : parsePort(flags.adminListen, "--admin-listen");
  if (flags.adminHost !== undefined && adminListen === undefined) {
    throw new UsageError("--admin-host: give --admin-listen too");
  }
  const running = await startWorker(config, log, {
    stages,
    concurrency,
    ...(listen === undefined ? {} : { listen }),
    ...(adminListen === undefined ? {} : { adminListen }),
    ...(flags.adminHost ? { adminHost: flags.adminHost } : {}),
  });
  log.info(
    {
      stages,
      queuePrefix: config.KIE_QUEUE_PREFIX,
      webhookPort: running.webhook?.port,
      adminPort: running.admin?.port,
      alerts: config.KIE_ALERT_WEBHOOK_URL !== undefined,
    },
    "worker started",
  );
  onShutdown(async (signal) => {
    log.info({ signal }, "shutting down: releasing jobs in hand");
    const hardStop = setTimeout(() => {
      log.error("shutdown deadline passed: exiting");
      process.exit(0);
    }, config.KIE_SHUTDOWN_DEADLINE + HARD_STOP_AFTER_MS);
    hardStop.unref();
    await running.close(config.KIE_SHUTDOWN_DEADLINE);
    log.info("worker stopped");
  });
}

function parseStages(value: string | undefined): Stage[] {
  if (value === undefined) return [...STAGES];
  const stages = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const stage of stages) {
    if (!(STAGES as readonly string[]).includes(stage)) {
      throw new UsageError(`--stages: unknown stage "${stage}" (expected a list of ${STAGES.join(", ")})`);
    }
  }
  if (stages.length === 0) throw new UsageError("--stages: name at least one stage");
  return stages as Stage[];
}
