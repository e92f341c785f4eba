import type { ArchivedImage, ArchiveFromUrlOptions } from "../archive/copy.js";
import type { ArchiveStore } from "../archive/types.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { ArchivePausePort } from "../fleet/archive-pause.js";
import type { KeyRing } from "../fleet/key-ring.js";
import type { FleetPort } from "../fleet/port.js";
import type { KieApi } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { RowRecord } from "../ledger/types.js";
import type { ArchiveJob, PollJob, SubmitJob } from "./jobs.js";
import type { ReuseDeps } from "./reuse.js";

/** The fleet-wide state the stages consult: declared beside the fleet (Redis-backed in production). */
export type { FleetPort } from "../fleet/port.js";

/** A submit job's priority: the batch's `priority` (BatchSummary), passed on whatever it is. */
export interface SubmitPriority {
  priority: number | undefined;
}

/** How stages hand work to the next stage. Job ids come from `jobKey`, so adding twice is harmless. */
export interface StageQueues {
  /**
   * `priority`: the batch's (BullMQ's, as enqueue gives its jobs), required: BullMQ runs a job
   * without one before every prioritised job, so a path that forgot it put its rows ahead of every
   * other batch. Undefined only for a batch that keeps none (recorded by an earlier version).
   */
  addSubmit(data: SubmitJob, options: SubmitPriority): Promise<void>;
  /** `addSubmit` for many jobs in one round trip, at one priority. */
  addSubmitBulk(jobs: readonly SubmitJob[], options: SubmitPriority): Promise<void>;
  addPoll(data: PollJob, delayMs: number): Promise<void>;
  /** `delayMs`: the job waits that long before it runs. @defaultValue 0 */
  addArchive(data: ArchiveJob, options?: { delayMs?: number }): Promise<void>;
  /** Whether the row's archive job is waiting, delayed or running: something will archive (or fail) it. */
  archiveJobLive(batch: string, rowId: string): Promise<boolean>;
}

/**
 * The archive stage's slots in this process, shared by its jobs and by the archives a poll job
 * runs inline (archive-inline.ts). A stage job always takes one (BullMQ already bounds them by the
 * stage's concurrency); an inline archive takes one only when one is free, and never waits. So
 * archives at once in a process stay within twice the stage's concurrency (inline runs that took
 * every slot, then as many stage jobs; more for the moment a replaced stage worker finishes its
 * jobs, fetch-watchdog), and within it while the archive queue is empty.
 */
export interface ArchiveSlots {
  /** Takes a slot whether or not one is free; the answer gives it back (once). */
  take(): () => void;
  /** Takes a free slot, or answers undefined when all are in use. */
  tryTake(): (() => void) | undefined;
}

/**
 * What an inline archive answers: the row is done with (archived, failed, or nothing left to do),
 * or it is the archive stage's now: add its job with `data`, to run after `delayMs`.
 */
export type InlineArchiveOutcome = "done" | { handOff: ArchiveJob; delayMs: number };

/**
 * Archives a row in the job that found its task done (the poll job), as the archive stage would,
 * when this process has a free archive slot and archiving is not paused; otherwise answers a
 * hand-off. `row`: the row as the caller's own move to `archiving` left it (no second read).
 * Throws only when `job.signal` is aborted (shutdown).
 */
export type ArchiveInline = (
  data: ArchiveJob,
  job: { signal: AbortSignal; readonly log: Logger },
  row?: RowRecord,
) => Promise<InlineArchiveOutcome>;

export interface WorkerSettings {
  /** KIE_MAX_WAIT: give up on a task still generating after this long. */
  maxWaitMs: number;
  /** KIE_MAX_RESUBMITS. */
  maxResubmits: number;
  /** Base of the callback URL (webhook mode); the job key is appended as the path. */
  callbackUrl?: string;
  /** Hosts images may come from although they resolve to private addresses. */
  downloadHosts: string[];
  /** How long "recordInfo is null" is taken for lag after a submit. @defaultValue 60 s */
  recordLagGraceMs: number;
  /** KIE_POLL_INTERVAL: first status check after a submit; later checks grow 1.6x from it to 9x (core/backoff.ts). */
  pollFirstMs: number;
  /** How long a finished image is assumed to stay downloadable. @defaultValue 14 days */
  fileLifetimeMs: number;
  /** Out of credits (402): how often one worker checks the balance. @defaultValue PAUSE_POLICY["out-of-credits"].probeEveryMs (60 s) */
  creditsProbeMs?: number;
  /** Usage cap (433): how often one worker probes with a single submit. @defaultValue PAUSE_POLICY["usage-cap"].probeEveryMs (5 min) */
  usageCapProbeMs?: number;
  /** Store unavailable: how often one worker probes the archive store. @defaultValue PAUSE_POLICY["store-unavailable"].probeEveryMs (60 s) */
  storeProbeMs?: number;
  /** KIE_ARCHIVE_MIN_FREE: the free bytes a folder store's probe asks for (archive/probe.ts). Absent: none. */
  storeMinFreeBytes?: number;
  /**
   * Multiplies the fleet's 429/455 backoff ladder (2 s.. / 30 s..). Read by the composition root
   * when it builds the fleet, not by the stages; for tests. @defaultValue 1
   */
  fleetBackoffScale?: number;
  /** How long a task whose API key no worker polling it has waits before its row fails. @defaultValue KEY_MISSING_GRACE_MS (15 min) */
  keyMissingGraceMs?: number;
}

/** A fetchable URL for a row's local input image (worker/input-image.ts: uploaded once per file). */
export interface InputImagePort {
  /**
   * Uploads (when it must) with the key of `lane`, the key's index in the worker's keys (0 by
   * default). Throws KieError: retryable for transient trouble, not for a file that changed or
   * was refused.
   */
  urlFor(path: string, sha256: string, signal?: AbortSignal, lane?: number): Promise<string>;
  /**
   * Forgets the file's upload (this worker's and the fleet's record): the next `urlFor` uploads
   * again. Absent: a create refused for its input image is not retried with a fresh upload.
   */
  forget?(sha256: string): Promise<void>;
}

export interface StageDeps {
  kie: KieApi;
  ledger: Ledger;
  fleet: FleetPort;
  /** The worker's API keys; `kie` and `fleet` are its first. Absent: one key, `kie` and `fleet`. */
  keys?: KeyRing;
  store: ArchiveStore;
  /** The deployment's archive pause (the store refuses): the archive stage's gate. */
  storePause: ArchivePausePort;
  queues: StageQueues;
  /** Reuse across batches (reuse.ts): the result index, the store and the ledger. Absent: off (KIE_REUSE=off). */
  reuse?: ReuseDeps;
  /** Uploads rows' local input images (image-to-image, edit) before their create. Absent: such rows fail. */
  inputImages?: InputImagePort;
  /** Streams one image into the store (the archive stage's `copyImage`). @defaultValue archiveFromUrl */
  copyImage?: (options: ArchiveFromUrlOptions) => Promise<ArchivedImage>;
  /** The archive stage's slots in this process. Absent: this process does not run the stage. */
  archiveSlots?: ArchiveSlots;
  /** A poll that finds its task done archives with this (archive-inline.ts). Absent: never inline. */
  archiveInline?: ArchiveInline;
  clock: Clock;
  settings: WorkerSettings;
}
