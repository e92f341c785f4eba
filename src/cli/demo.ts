import { createLogger } from "../core/logger.js";
import { MAX_DEMO_ROWS, parseWholeNumber } from "../core/values.js";
import { runDemo } from "../demo/run.js";

export interface DemoFlags {
  rows?: string;
  s3?: boolean;
  output?: string;
  edit?: boolean;
}

/** `kie-batch demo`: exit 0 only if every row was archived. */
export async function runDemoCommand(flags: DemoFlags): Promise<void> {
  const rows = flags.rows === undefined ? 12 : parseWholeNumber(flags.rows, "--rows", 1, MAX_DEMO_ROWS);
  // Worker logs would drown the progress display: only warnings and worse, unless asked for.
  const log = createLogger({ level: process.env.LOG_LEVEL ?? "warn" });
  process.exitCode = await runDemo({
    rows,
    s3: flags.s3 === true,
    edit: flags.edit === true,
    outputDir: flags.output ?? "demo-output",
    out: process.stdout,
    log,
    env: process.env,
  });
}
