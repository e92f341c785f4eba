/**
 * The public contract of the KIE simulator (`startSimulator`). Tests, benchmarks, `simulate` and
 * `demo` use only what is declared here.
 */

/** A fault the simulator can inject on a call instead of answering normally. */
export type CallFault =
  /** Answer HTTP 200 with this body code (and a matching msg), e.g. 500, 455, 433. */
  | { kind: "code"; code: number; msg?: string; httpStatus?: number }
  /** Answer with this HTTP status and a short non-JSON body (502/503/504 from a proxy). */
  | { kind: "http"; status: number }
  /** Destroy the socket after reading the request (for a submit: AFTER creating the task when `afterCreate`). */
  | { kind: "reset"; afterCreate?: boolean }
  /** Answer normally after this many real milliseconds (for client timeouts). */
  | { kind: "delay"; ms: number }
  /** Never answer (until the server closes). */
  | { kind: "hang" };

export type SimEndpoint = "submit" | "status" | "credit" | "download-url" | "image" | "upload";

export interface SimulatorOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Accepted bearer key; undefined accepts any non-empty key. */
  apiKey?: string;
  /**
   * Accepted bearer keys (besides `apiKey`). Given, a task is visible only to keys of the account
   * that created it (status answers "recordInfo is null" to another account's key).
   */
  apiKeys?: string[];
  /** The account of each key (key -> account name): keys of one account share its window. Unlisted: its own. */
  accounts?: Record<string, string>;
  /** Sliding window of creates per account (per key unless `accounts` groups them). @defaultValue { limit: 20, windowMs: 10_000 } */
  rateLimit?: { limit: number; windowMs: number };
  /** Answer 429s with HTTP 429 instead of HTTP 200 + code 429. @defaultValue false */
  rateLimitHttpStatus?: boolean;
  /** Generation latency range in simulated ms (uniform). @defaultValue { minMs: 2000, maxMs: 6000 } */
  latency?: { minMs: number; maxMs: number };
  /** Divides generation times, lag and file lifetimes (never the rate window). @defaultValue 1 */
  timeScale?: number;
  /** Simulated ms after create during which record-info answers 422 "recordInfo is null". @defaultValue 1500 */
  recordLagMs?: number;
  /** Starting credits. @defaultValue 1_000_000 */
  credits?: number;
  /** Fraction of tasks that end failed (successFlag 2 / state fail). @defaultValue 0 */
  failureRate?: number;
  /** Fraction of failed tasks that fail at creation (successFlag 3) instead. @defaultValue 0 */
  creationFailureRate?: number;
  /** Fraction of calls answered by a random transient fault (500 code, HTTP 502/503, reset, slow). @defaultValue 0 */
  faultRate?: number;
  /** Simulated ms a result file lives. @defaultValue 14 days */
  fileTtlMs?: number;
  /** Pad every image to at least this many bytes (a valid PNG/JPEG still), for streaming tests. @defaultValue 0 */
  imagePadBytes?: number;
  /** Simulated ms an uploaded file (File Upload API) lives. @defaultValue 24 hours */
  uploadTtlMs?: number;
  /** Largest file the upload endpoint takes. @defaultValue 10 MiB (LIMITS.inputImageMaxBytes) */
  uploadMaxBytes?: number;
  /** Number of result URLs per task. @defaultValue 1 */
  imagesPerTask?: number;
  /** Report `creditsConsumed` in jobs-flavour status answers. @defaultValue true */
  reportCreditsConsumed?: boolean;
  /** HMAC key for callback signatures; unset sends callbacks unsigned. */
  webhookHmacKey?: string;
  /** Address to bind. @defaultValue "127.0.0.1" (use "0.0.0.0" only inside a container network) */
  host?: string;
  /** Host name used in result URLs (must resolve to 127.0.0.1). @defaultValue "127.0.0.1" */
  publicHost?: string;
  /** Seed for the simulator's own randomness, for repeatable runs. */
  randomSeed?: number;
}

export interface SimulatorStats {
  creates: number;
  /** Creates per request hash (sha256 of the canonical params); a value above 1 is a duplicate. */
  createsByRequestHash: Record<string, number>;
  rateLimited: number;
  /** Status requests received, also those answered by a fault, 455, 401 or 422. */
  statusCalls: number;
  /** File GETs answered with the file (HEAD not counted). */
  downloads: number;
  /** download-url requests received, whatever their answer. */
  downloadUrlCalls: number;
  /** Callback deliveries the receiver acknowledged with a 2xx. */
  callbacksSent: number;
  /** Callback delivery attempts that failed (non-2xx, network error, timeout); retried up to 3 attempts. */
  callbacksFailed: number;
  /** Callbacks given up after their last failed attempt. */
  callbacksAbandoned?: number;
  maxInFlight: number;
  inFlight: number;
  creditsCharged: number;
  creditsLeft: number;
  /** Accepted creates per bearer key. */
  createsByKey?: Record<string, number>;
  /** Faults injected, by kind. */
  faults: Record<string, number>;
  /** Epoch ms of every accepted create, for checking the rate window from outside. */
  createTimes: number[];
  /** Every task id created (charged), oldest first: what a crash test traces to a ledger or a log. */
  createdTaskIds: string[];
  /** The credits charged for each task id created (the account's bill, per task). */
  creditsByTask: Record<string, number>;
  /** Files the File Upload API accepted. */
  uploads?: number;
}

export interface SimTask {
  taskId: string;
  flavor: "qwen" | "jobs";
  params: Record<string, unknown>;
  state: "waiting" | "generating" | "success" | "fail" | "creation_failed";
  createdAt: number;
  completesAt: number;
  imageUrls: string[];
  credits: number;
  callBackUrl?: string;
  /** image-to-image and edit: the sha256 of the input image the simulator fetched for the task. */
  inputSha256?: string;
}

export interface SimulatorHandle {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  port: number;
  stats(): SimulatorStats;
  /** The task, or undefined for an unknown id. */
  task(taskId: string): SimTask | undefined;
  /** Every task created, oldest first: which create came before which, for crash tests. */
  tasks(): SimTask[];
  /** Queue faults for the next calls to an endpoint, in order. */
  injectFaults(endpoint: SimEndpoint, ...faults: CallFault[]): void;
  /** Force the outcome of tasks created from now on (until called again with undefined). */
  setNextOutcome(outcome: "success" | "fail" | "creation_failed" | undefined): void;
  setMaintenance(on: boolean): void;
  setCredits(credits: number): void;
  /** While capped, every create with `key` answers 433 (the key's usage cap); the others go on. */
  capKey(key: string, capped: boolean): void;
  /**
   * Make every existing file of the task expire now (its URLs answer 404/410). download-url still
   * hands out working links for it: the simulator redraws bytes, never deletes them.
   */
  expireFiles(taskId: string): void;
  /**
   * A broken file host: the task's original result URLs answer `status` (default 502) until
   * called again with `null`; download-url links keep working (KIE's advice for a URL that has
   * stopped answering).
   */
  breakFiles(taskId: string, status?: number | null): void;
  /** Make every uploaded file expire now (its downloadUrl answers 404). */
  expireUploads(): void;
  /** Finish every generating task now. */
  completeAll(): void;
  close(): Promise<void>;
}
