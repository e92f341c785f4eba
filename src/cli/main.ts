import { Command, Option } from "commander";
import { loadConfig } from "../config/index.js";
import { createLogger } from "../core/logger.js";
import { exitWithError } from "./errors.js";

/**
 * Each command's module is loaded when that command runs: `kie-batch enqueue` does not load the
 * worker's, the dashboard's or the demo's dependencies (S3, express, bull-board, image codecs),
 * which cost start-up time and tens of MB of memory (issue 10's enqueue figures).
 */
function lazy<A extends unknown[], R>(load: () => Promise<(...args: A) => R>) {
  return async (...args: A): Promise<Awaited<R>> => await (await load())(...args);
}
const runBudgetCommand = lazy(async () => (await import("./budget.js")).runBudgetCommand);
const runCancelCommand = lazy(async () => (await import("./cancel.js")).runCancelCommand);
const runDashboardCommand = lazy(async () => (await import("./dashboard.js")).runDashboardCommand);
const runDemoCommand = lazy(async () => (await import("./demo.js")).runDemoCommand);
const runEnqueueCommand = lazy(async () => (await import("./enqueue.js")).runEnqueueCommand);
const runPauseCommand = lazy(async () => (await import("./pause.js")).runPauseCommand);
const runResumeCommand = lazy(async () => (await import("./pause.js")).runResumeCommand);
const runPurgeCommand = lazy(async () => (await import("./purge.js")).runPurgeCommand);
const runResultsCommand = lazy(async () => (await import("./results.js")).runResultsCommand);
const runRetryCommand = lazy(async () => (await import("./retry.js")).runRetryCommand);
const runSimulateCommand = lazy(async () => (await import("./simulate.js")).runSimulateCommand);
const runStatusCommand = lazy(async () => (await import("./status.js")).runStatusCommand);
const runWorkerCommand = lazy(async () => (await import("./worker.js")).runWorkerCommand);

/**
 * Commander wiring only: each action parses its flags, loads the configuration and calls one
 * function. Output for people goes to stdout; logs go to stderr.
 */
const program = new Command("kie-batch")
  .description("Batch image generation on the KIE.ai API: manifest in, archived images and results out.")
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: false });

function action<A extends unknown[]>(fn: (...args: A) => Promise<void>) {
  return (...args: A) => fn(...args).catch(exitWithError);
}

program
  .command("simulate")
  .description("Run a local KIE look-alike (for tests, the demo and trying things without a key)")
  .option("--port <port>", "port on 127.0.0.1 (0 picks a free one)", "8787")
  .option("--api-key <key>", "accepted bearer key (default: KIE_API_KEY, else any non-empty key)")
  .option("--rate-limit <rate>", "creates per sliding window per key", "20/10s")
  .option("--rate-limit-http", "answer 429s with HTTP 429 instead of HTTP 200 + code 429")
  .option("--latency <range>", "generation time range, e.g. 2s-6s or 30s-8m", "2s-6s")
  .option("--time-scale <factor>", "divide generation times and file lifetimes by this", "1")
  .option("--record-lag <duration>", 'how long a new task answers "recordInfo is null"')
  .option("--failure-rate <fraction>", "fraction of tasks that fail")
  .option("--fault-rate <fraction>", "fraction of calls that meet a transient fault")
  .option("--credits <n>", "starting credits")
  .option("--file-ttl <duration>", "how long result files live", "14d")
  .option("--image-pad <size>", "pad every image to this size, e.g. 25MB")
  .option("--images-per-task <n>", "result URLs per task")
  .option("--hmac-key <key>", "sign callbacks with this key")
  .option("--seed <n>", "seed of the simulator's randomness")
  .option("--host <address>", "address to bind (0.0.0.0 only inside a container network)", "127.0.0.1")
  .option("--public-host <name>", "host name in result URLs (e.g. the compose service name)")
  .action(action(async (flags) => runSimulateCommand(flags)));

program
  .command("worker")
  .description("Run stage workers (submit, poll, archive) until SIGTERM/SIGINT")
  .option("--stages <list>", "comma-separated stages to run", "submit,poll,archive")
  .option("--concurrency-submit <n>", "concurrent submit jobs (default 4)")
  .option("--concurrency-poll <n>", "concurrent poll jobs (default 16)")
  .option("--concurrency-archive <n>", "concurrent archive jobs (default 4)")
  .addOption(new Option("--listen <port>", "serve the webhook receiver and /healthz on this port"))
  .option("--admin-listen <port>", "serve /metrics (Prometheus) and /healthz on this admin port")
  .option("--admin-host <host>", "address the admin port binds (default 127.0.0.1; metrics are not public)")
  .action(
    action(async (flags) => {
      const config = loadConfig();
      const log = createLogger({ level: config.LOG_LEVEL });
      await runWorkerCommand(config, log, flags);
    }),
  );

// --- enqueue ---

program
  .command("enqueue")
  .description("Validate a prompt manifest (CSV, JSON, JSONL) and queue one job per new row")
  .argument("<file>", "the manifest, or - for stdin (then --batch is required)")
  .option("--batch <name>", "batch name (default: the file's name without extension)")
  .option("--format <format>", "csv, json or jsonl (default: from the extension)")
  .option(
    "--set <key=value>",
    "a parameter for rows that do not give it (repeatable)",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option("--dry-run", "validate and estimate credits; write nothing (Redis is not needed)")
  .option("--strict", "enqueue nothing unless every row is valid")
  .option("--budget <credits>", "credit budget of the batch")
  .option("--priority <n>", "1 (runs first) to 2097151 (runs last); default 1000")
  .option(
    "--allow-paths <folder>",
    "a folder besides the manifest's own that image_path may read from (repeatable)",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option("--no-reuse", "create every row, never copy an earlier row's image of the same request and seed")
  .option("--json", "print the summary as JSON")
  .action(
    action(async (file: string, flags) => {
      await runEnqueueCommand(loadConfig(), file, flags);
    }),
  );

// --- operator commands (status, results, retry, pause, resume, cancel, budget) ---

program
  .command("status")
  .description("Counts, credits and fleet state of one batch, or of every batch")
  .argument("[batch]", "batch name (omit for every batch)")
  .option("--json", "machine-readable output")
  .option("--watch", "redraw every second until the batch finishes (Ctrl-C to stop)")
  .option("--wait", "return when every row is archived, failed or cancelled: exit 0, or 3 if any failed")
  .action(
    action(async (batch: string | undefined, flags) => {
      await runStatusCommand(loadConfig(), batch, flags);
    }),
  );

program
  .command("results")
  .description("One record per row, in manifest order: JSONL or CSV")
  .argument("<batch>", "batch name")
  .option("--format <format>", "jsonl or csv", "jsonl")
  .option("--out <file>", "write to this file (atomically) instead of stdout")
  .action(
    action(async (batch: string, flags) => {
      await runResultsCommand(loadConfig(), batch, flags);
    }),
  );

program
  .command("retry")
  .description("Put failed rows back into the pipeline (a row with a task is polled again first)")
  .argument("<batch>", "batch name")
  .action(
    action(async (batch: string) => {
      await runRetryCommand(loadConfig(), batch);
    }),
  );

program
  .command("pause")
  .description("Stop new submissions fleet-wide (polls and archives go on) until `resume`")
  .option("--reason <text>", "shown by `status`")
  .action(
    action(async (flags) => {
      await runPauseCommand(loadConfig(), flags);
    }),
  );

program
  .command("resume")
  .description("Restart submissions; also lifts an automatic pause (bad key, no credits, usage cap)")
  .action(
    action(async () => {
      await runResumeCommand(loadConfig());
    }),
  );

program
  .command("cancel")
  .description("Cancel a batch's rows not yet submitted; submitted rows are still polled and archived")
  .argument("<batch>", "batch name")
  .action(
    action(async (batch: string) => {
      await runCancelCommand(loadConfig(), batch);
    }),
  );

program
  .command("budget")
  .description("Set a batch's credit budget, or remove it with `none`")
  .argument("<batch>", "batch name")
  .argument("<credits>", "credits, or none")
  .action(
    action(async (batch: string, credits: string) => {
      await runBudgetCommand(loadConfig(), batch, credits);
    }),
  );

// --- end of operator commands ---

// --- purge ---

program
  .command("purge")
  .description("Delete a batch's ledger and any of its jobs left in the queues, after confirmation")
  .argument("<batch>", "batch name")
  .option("--yes", "do not ask (required when stdin is not a terminal)")
  .action(
    action(async (batch: string, flags) => {
      await runPurgeCommand(loadConfig(), batch, flags);
    }),
  );

// --- dashboard ---

program
  .command("dashboard")
  .description(
    "Serve the batch overview, each batch's images (/batches/NAME) and bull-board (/queues) until SIGINT/SIGTERM",
  )
  .option("--port <port>", "port (0 picks a free one)", "3000")
  .option("--host <host>", "address to bind; anything but loopback needs a token", "127.0.0.1")
  .option("--auth-token <token>", "every page and API call needs this token (default: KIE_DASHBOARD_TOKEN)")
  .option(
    "--allow-actions",
    "retry buttons on the batch pages, and bull-board's job buttons (the ledger does not see those); needs a token",
  )
  .option(
    "--trust-proxy <hops>",
    "reverse proxies in front of the dashboard: the login throttle reads the client's address from X-Forwarded-For",
  )
  .action(
    action(async (flags) => {
      const config = loadConfig();
      await runDashboardCommand(config, createLogger({ level: config.LOG_LEVEL }), flags);
    }),
  );

program
  .command("demo")
  .description("See it work: simulator, Redis, workers and the sample manifest, archived to ./demo-output")
  .option("--rows <n>", "rows to generate (the sample's 12, cycled with new seeds beyond)", "12")
  .option("--s3", "archive to an in-process s3rver instead of a folder")
  .option("--output <dir>", "where images, results and s3rver's files go", "demo-output")
  .option("--edit", "run the editing sample instead: image-to-image and edit over the images in examples/")
  .action(action(async (flags) => runDemoCommand(flags)));

await program.parseAsync(process.argv).catch(exitWithError);
