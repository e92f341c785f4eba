import { resolve } from "node:path";
import type { Config } from "../config/index.js";
import { parseResultsFormat, type ResultsFormat } from "../core/values.js";
import { exportResults } from "../report/results.js";
import { withOps } from "./ops-context.js";

export interface ResultsFlags {
  format?: string;
  out?: string;
}

/** `kie-batch results BATCH`: JSONL or CSV, to stdout or atomically to --out. */
export async function runResultsCommand(config: Config, batch: string, flags: ResultsFlags): Promise<void> {
  const format = parseResultsFormat(flags.format);
  // `results | head`: the reader leaving is not an error. The writer sees the closed stream and stops.
  const onStdoutError = () => {};
  process.stdout.on("error", onStdoutError);
  try {
    await exportTo(config, batch, format, flags);
  } catch (error) {
    if ((error as { code?: unknown }).code !== "EPIPE") throw error;
  } finally {
    process.stdout.off("error", onStdoutError);
  }
}

async function exportTo(
  config: Config,
  batch: string,
  format: ResultsFormat,
  flags: ResultsFlags,
): Promise<void> {
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
