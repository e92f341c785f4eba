import { createLogger } from "../core/logger.js";
import { runDemo } from "../demo/run.js";
import { UsageError } from "./errors.js";

export interface DemoFlags {
  rows?: string;
  s3?: boolean;
  output?: string;
}

/** `kie-batch demo`: exit 0 only if every row was archived. */
export async function runDemoCommand(flags: DemoFlags): Promise<void> {
  const rows = flags.rows === undefined ? 12 : Number(flags.rows);
  if (!Number.isInteger(rows) || rows < 1 || rows > 100_000) {
    throw new UsageError(`--rows: expected a whole number from 1 to 100000, got "${flags.rows}"`);
  }
  // Worker logs would drown the progress display: only warnings and worse, unless asked for.
  const log = createLogger({ level: process.env.LOG_LEVEL ?? "warn" });
  process.exitCode = await runDemo({
    rows,
    s3: flags.s3 === true,
    outputDir: flags.output ?? "demo-output",
    out: process.stdout,
    log,
    env: process.env,
  });
}
