import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { PAUSE_KINDS } from "../fleet/policy.js";

/**
 * Every metric a worker exports, on a Registry of its own (never prom-client's global one, so
 * two workers in one process, as in tests and the demo, never share or collide).
 *
 * Two kinds live here. Counters and histograms count what THIS process did (sum them across
 * workers). Gauges marked "fleet-wide" are read from Redis at scrape time (src/metrics/state.ts):
 * every worker reports the same value, so aggregate them with max(), not sum().
 */
const METRIC_PREFIX = "kie_batch_";

/** KIE answers take milliseconds to seconds; a create may wait on the API's queue. */
const REQUEST_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Generations take seconds to minutes (the simulator's scaled runs well under a second). */
const GENERATION_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800];
/** Image puts: a local folder in milliseconds, S3 multipart of 25 MB in seconds. */
const PUT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface WorkerMetrics {
  readonly registry: Registry;
  /** KIE calls by endpoint and outcome: `code` is the KieError code, or "ok". */
  readonly apiRequests: Counter<"endpoint" | "code" | "api_code">;
  readonly apiDuration: Histogram<"endpoint">;
  /** Tasks created (successful submits). */
  readonly submits: Counter;
  /** 429 answers, by endpoint. */
  readonly rateLimited: Counter<"endpoint">;
  /** Status calls by what they found: generating, success, failed, or error. */
  readonly statusCalls: Counter<"result">;
  readonly generationSeconds: Histogram;
  readonly archiveBytes: Counter<"kind">;
  readonly archivePutDuration: Histogram<"kind" | "outcome">;
  readonly creditsSpent: Counter;
  /** Rows this worker moved into a terminal state. */
  readonly rowsFinished: Counter<"status">;
  readonly batchesFinished: Counter;
  readonly pauses: Counter<"kind">;
  readonly resumes: Counter<"kind">;
  readonly backoffs: Counter<"kind">;
  readonly alerts: Counter<"event" | "outcome">;
  readonly scrapeErrors: Counter;
  /** Stage workers replaced by the fetch watchdog (src/bull/fetch-watchdog.ts). */
  readonly stageWorkerRestarts: Counter<"stage">;
  // Fleet-wide gauges, filled at scrape time.
  readonly inFlight: Gauge;
  readonly paused: Gauge<"kind">;
  readonly pausedSince: Gauge;
  /** Per API key of the worker (short hash, account name): 1 for the kind of its pause, else 0. */
  readonly keyPaused: Gauge<"key" | "account" | "kind">;
  readonly backoffRemaining: Gauge;
  readonly oldestUnarchivedAge: Gauge;
  readonly queueJobs: Gauge<"stage" | "state">;
  readonly batches: Gauge<"state">;
  readonly batchRows: Gauge<"batch" | "status">;
  readonly batchCreditsSpent: Gauge<"batch">;
  /**
   * Sets what a scrape runs before the fleet-wide gauges are read: every such gauge awaits it,
   * so it should be memoised per scrape (src/metrics/state.ts does).
   */
  onScrape(refresh: () => Promise<void>): void;
}

export interface WorkerMetricsOptions {
  /** prom-client's process and Node.js metrics (`process_*`, `nodejs_*`). @defaultValue true */
  defaultMetrics?: boolean;
}

export function createWorkerMetrics(options: WorkerMetricsOptions = {}): WorkerMetrics {
  const registry = new Registry();
  // prom-client's event-loop sampling stays at its 10 ms: a timer waking the worker 100 times a
  // second (~5 ms of CPU a second idle), but Node's histogram counts the whole interval, so a
  // coarser one lifts every `nodejs_eventloop_lag_*` figure to that interval and breaks the
  // thresholds of stock dashboards (issue 10's eighth session tried 100 ms).
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;
  const counter = <L extends string>(suffix: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name: name(suffix), help, labelNames, registers });
  let refresh: () => Promise<void> = async () => {};
  /** A fleet-wide gauge: its value is read from Redis when scraped. */
  const gauge = <L extends string>(suffix: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: name(suffix), help, labelNames, registers, collect: () => refresh() });
  const histogram = <L extends string>(
    suffix: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ) => new Histogram<L>({ name: name(suffix), help, buckets, labelNames, registers });

  return {
    registry,
    apiRequests: counter(
      "api_requests_total",
      "KIE API calls by endpoint (submit, status, download_url, credit) and outcome: code is the KieError code or ok; api_code the body's code",
      ["endpoint", "code", "api_code"],
    ),
    apiDuration: histogram(
      "api_request_duration_seconds",
      "Duration of KIE API calls, whatever their outcome",
      REQUEST_BUCKETS,
      ["endpoint"],
    ),
    submits: counter("submits_total", "Generation tasks created (successful submits)"),
    rateLimited: counter("rate_limited_total", "KIE answers with code 429, by endpoint", ["endpoint"]),
    statusCalls: counter(
      "status_calls_total",
      "Task status calls by what they found: generating, success, failed, or error",
      ["result"],
    ),
    generationSeconds: histogram(
      "generation_seconds",
      "Provider generation time of successful tasks (completeTime - createTime), once per task",
      GENERATION_BUCKETS,
    ),
    archiveBytes: counter("archive_bytes_total", "Bytes written to the archive store by successful puts", [
      "kind",
    ]),
    archivePutDuration: histogram(
      "archive_put_duration_seconds",
      "Duration of archive store puts (an image put includes its download, which streams through it)",
      PUT_BUCKETS,
      ["kind", "outcome"],
    ),
    creditsSpent: counter("credits_spent_total", "Credits settled for finished tasks (ledger settleCredits)"),
    rowsFinished: counter("rows_finished_total", "Rows this worker moved to archived, failed or cancelled", [
      "status",
    ]),
    batchesFinished: counter("batches_finished_total", "Batches whose last row this worker finished"),
    pauses: counter("pauses_total", "Fleet pauses of submissions this worker started, by kind", ["kind"]),
    resumes: counter("resumes_total", "Fleet pauses this worker lifted (a successful probe), by kind", [
      "kind",
    ]),
    backoffs: counter("backoffs_total", "Fleet backoffs this worker triggered (rate-limited, maintenance)", [
      "kind",
    ]),
    alerts: counter(
      "alerts_total",
      "Alert deliveries by event and outcome (sent, failed, duplicate, dropped, unclaimed)",
      ["event", "outcome"],
    ),
    scrapeErrors: counter("scrape_errors_total", "Scrapes whose fleet-wide gauges could not be read"),
    stageWorkerRestarts: counter(
      "stage_worker_restarts_total",
      "Stage workers replaced because they took no job while their queue had jobs ready",
      ["stage"],
    ),
    inFlight: gauge(
      "in_flight_tasks",
      "Fleet-wide: tasks of this worker's account holding an in-flight slot",
    ),
    paused: gauge(
      "submissions_paused",
      `Fleet-wide: 1 for the kind of the pause in force (${PAUSE_KINDS.join(", ")}), else 0`,
      ["kind"],
    ),
    keyPaused: gauge(
      "key_submissions_paused",
      "Fleet-wide, per API key of this worker (its short hash) and account: 1 for the kind of the key's pause, else 0",
      ["key", "account", "kind"],
    ),
    pausedSince: gauge(
      "submissions_paused_since_seconds",
      "Fleet-wide: when the pause in force began (Unix seconds), 0 when not paused",
    ),
    backoffRemaining: gauge(
      "backoff_remaining_seconds",
      "Fleet-wide: time left of the 429/455 backoff of submissions",
    ),
    oldestUnarchivedAge: gauge(
      "oldest_unarchived_age_seconds",
      "Fleet-wide: age of the oldest finished image not archived yet, across batches; 0 when none",
    ),
    queueJobs: gauge("queue_jobs", "Fleet-wide: BullMQ jobs per stage queue and state", ["stage", "state"]),
    batches: gauge("batches", "Fleet-wide: batches in the ledger, finished or unfinished", ["state"]),
    batchRows: gauge("batch_rows", "Fleet-wide: rows per status of the most recent batches", [
      "batch",
      "status",
    ]),
    batchCreditsSpent: gauge("batch_credits_spent", "Fleet-wide: credits spent by the most recent batches", [
      "batch",
    ]),
    onScrape(fn) {
      refresh = fn;
    },
  };
}
