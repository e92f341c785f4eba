import { runStatus } from "../commands/status.js";
import type { Config } from "../config/index.js";
import { interruptSignal, withOps } from "./ops-context.js";

export interface StatusFlags {
  json?: boolean;
  watch?: boolean;
  wait?: boolean;
}

/** `kie-batch status [BATCH]`: exit 0, or with --wait 3 when rows failed (130 on Ctrl-C). */
export async function runStatusCommand(
  config: Config,
  batch: string | undefined,
  flags: StatusFlags,
): Promise<void> {
  const interrupt = flags.watch || flags.wait ? interruptSignal() : undefined;
  try {
    process.exitCode = await withOps(config, (ctx) =>
      runStatus(
        {
          ledger: ctx.ledger,
          fleet: () => ctx.fleetState(),
          clock: ctx.clock,
          out: process.stdout,
          queuePrefix: config.KIE_QUEUE_PREFIX,
        },
        {
          ...(batch === undefined ? {} : { batch }),
          json: flags.json === true,
          watch: flags.watch === true,
          wait: flags.wait === true,
          ...(interrupt ? { signal: interrupt.signal } : {}),
        },
      ),
    );
  } finally {
    interrupt?.dispose();
  }
}
