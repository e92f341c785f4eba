import { resolve } from "node:path";
import type { Config } from "../config/index.js";
import { exportResults, parseResultsFormat } from "../ops/results.js";
import { withOps } from "./ops-context.js";

export interface ResultsFlags {
  format?: string;
  out?: string;
}

/** `kie-batch results BATCH`: JSONL or CSV, to stdout or atomically to --out. */
export async function runResultsCommand(config: Config, batch: string, flags: ResultsFlags): Promise<void> {
  const format = parseResultsFormat(flags.format);
  await withOps(config, async (ctx) => {
    const count = await exportResults(
      { ledger: ctx.ledger, queuePrefix: config.KIE_QUEUE_PREFIX },
      {
        batch,
        format,
        stdout: process.stdout,
        ...(flags.out === undefined ? {} : { outFile: resolve(flags.out) }),
      },
    );
    if (flags.out !== undefined)
      process.stderr.write(`kie-batch: ${count} rows written to ${resolve(flags.out)}\n`);
  });
}
