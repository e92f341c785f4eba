import { createInterface } from "node:readline/promises";
import { purgeBatch } from "../commands/purge.js";
import type { Config } from "../config/index.js";
import { UsageError } from "./errors.js";
import { withOps } from "./ops-context.js";

export interface PurgeFlags {
  yes?: boolean;
}

/**
 * `kie-batch purge BATCH`: deletes the batch's ledger and jobs after a y/N question on a terminal;
 * without one, `--yes` is required (exit 2 otherwise). Exit 0 when purged, 1 when the answer was
 * no, 2 for an unknown batch or one another purge is deleting now.
 */
export async function runPurgeCommand(config: Config, batch: string, flags: PurgeFlags): Promise<void> {
  const ask = flags.yes !== true;
  if (ask && !(process.stdin.isTTY && process.stderr.isTTY)) {
    throw new UsageError(
      `purge deletes batch "${batch}" for good and needs a confirmation: no terminal to ask on, so pass --yes`,
    );
  }
  const report = await withOps(config, (ctx) =>
    purgeBatch(
      {
        ledger: ctx.ledger,
        queues: ctx.queues().queues,
        out: process.stdout,
        queuePrefix: config.KIE_QUEUE_PREFIX,
        inFlight: { releaseBatch: (name, options) => ctx.releaseInFlight(name, options) },
        ...(ask ? { confirm: () => askYesNo(`Delete batch ${batch} and its jobs for good? [y/N] `) } : {}),
      },
      batch,
    ),
  );
  if (!report.confirmed) process.exitCode = 1;
}

/** y or yes (any case) is yes; anything else, end of input and Ctrl-C are no. */
async function askYesNo(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once("SIGINT", () => resolve(""));
      rl.once("close", () => resolve(""));
      rl.question(question).then(resolve, () => resolve(""));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
