import type { ArchiveStore } from "../archive/types.js";
import type { Clock } from "../core/clock.js";
import type { KieApi } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { ArchiveJob, PollJob, SubmitJob } from "./jobs.js";

/** Why submissions are paused fleet-wide. */
export type PauseKind = "manual" | "bad-key" | "out-of-credits" | "usage-cap";

export interface PauseInfo {
  kind: PauseKind;
  reason: string;
  since: number;
  nextProbeAt?: number;
}

/** The fleet-wide state the stages consult (Redis-backed in production; see fleet/). */
export interface FleetPort {
  getPause(): Promise<PauseInfo | null>;
  /** The pause and the 429/455 backoff left, in one round trip: what a submitter checks each time. */
  readGate(): Promise<{ paused: PauseInfo | null; backoffMs: number }>;
  /** Records a pause; true when this call started it (so exactly one worker logs and alerts). */
  pause(
    kind: PauseKind,
    reason: string,
    options?: { probeAfterMs?: number; probeEveryMs?: number },
  ): Promise<boolean>;
  /** Clears the pause; with `kind`, only a pause of that kind (a probe never lifts an operator's pause). */
  resume(kind?: PauseKind): Promise<void>;
  /** True for exactly one caller once a paused state's probe is due. */
  claimProbe(): Promise<boolean>;
  /** A 429 or 455 seen: every submitter backs off for the returned time. */
  backoff(kind: "rate-limited" | "maintenance"): Promise<{ remainingMs: number; consecutive: number }>;
  backoffRemaining(): Promise<number>;
  clearBackoff(): Promise<void>;
  /** Waits for a slot of the account's sliding create window. */
  createSlot(signal: AbortSignal): Promise<void>;
  /** Waits for a slot of the account's status-call rate. */
  pollSlot(signal: AbortSignal): Promise<void>;
  /** KIE_MAX_IN_FLIGHT (0: no cap): true when the job holds a slot. */
  tryAcquireInFlight(jobKey: string): Promise<boolean>;
  touchInFlight(jobKey: string): Promise<void>;
  releaseInFlight(jobKey: string): Promise<void>;
}

/** How stages hand work to the next stage. Job ids come from `jobKey`, so adding twice is harmless. */
export interface StageQueues {
  addSubmit(data: SubmitJob): Promise<void>;
  addPoll(data: PollJob, delayMs: number): Promise<void>;
  addArchive(data: ArchiveJob): Promise<void>;
}

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
  /** First status check after a submit; later checks grow 1.5x from it to 12x (60 s by default). */
  pollFirstMs: number;
  /** How long a finished image is assumed to stay downloadable. @defaultValue 14 days */
  fileLifetimeMs: number;
  /** Out of credits (402): how often one worker checks the balance. @defaultValue CREDITS_PROBE_MS (60 s) */
  creditsProbeMs?: number;
  /** Usage cap (433): how often one worker probes with a single submit. @defaultValue USAGE_CAP_PROBE_MS (5 min) */
  usageCapProbeMs?: number;
  /** A row over its batch's budget looks again this often. @defaultValue BUDGET_RECHECK_MS (30 s) */
  budgetRecheckMs?: number;
  /**
   * Multiplies the fleet's 429/455 backoff ladder (2 s.. / 30 s..). Read by the composition root
   * when it builds the fleet, not by the stages; for tests. @defaultValue 1
   */
  fleetBackoffScale?: number;
}

export interface StageDeps {
  kie: KieApi;
  ledger: Ledger;
  fleet: FleetPort;
  store: ArchiveStore;
  queues: StageQueues;
  clock: Clock;
  settings: WorkerSettings;
}
