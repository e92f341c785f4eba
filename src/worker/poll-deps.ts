/** What the poll stage uses of the worker's ports (poll.ts, and the modules it calls). */
import type { Clock } from "../core/clock.js";
import type { KeyRing } from "../fleet/key-ring.js";
import type { KieApi } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { ArchiveInline, FleetPort, StageQueues, WorkerSettings } from "./ports.js";

/** The ledger calls the poll stage makes. */
type PollLedger = Pick<Ledger, "getRowState" | "transition" | "settleCredits" | "keepUncertain" | "getBatch">;

/** What the poll stage uses of the worker's ports: a test fakes just these. */
export interface PollDeps {
  kie: Pick<KieApi, "getTask">;
  ledger: PollLedger;
  fleet: Pick<FleetPort, "pollSlot" | "pause" | "touchInFlight" | "releaseInFlight">;
  /** The worker's keys: a task is polled with the key that created it. */
  keys?: KeyRing;
  queues: Pick<StageQueues, "addSubmit" | "addArchive"> & Partial<Pick<StageQueues, "archiveJobLive">>;
  /**
   * Archives a finished row in this job (archive-inline.ts) when this process runs the archive
   * stage and has a free slot. Absent: every finished row gets an archive job.
   */
  archiveInline?: ArchiveInline;
  clock: Pick<Clock, "now">;
  settings: Pick<
    WorkerSettings,
    "pollFirstMs" | "callbackUrl" | "recordLagGraceMs" | "maxWaitMs" | "maxResubmits" | "fileLifetimeMs"
  > &
    Partial<Pick<WorkerSettings, "keyMissingGraceMs">>;
}
