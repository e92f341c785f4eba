/**
 * The ledger's public shapes: a batch's counters and one record per manifest row. BullMQ jobs are
 * removed on completion, so these records, not the jobs, are what `status` and `results` read.
 */
import type { SettleOutcome } from "./script-outcomes.js";

/** Every state a row can be in, in pipeline order. */
export const STATUSES = [
  "queued",
  "submitted",
  "generating",
  "archiving",
  "archived",
  "failed",
  "cancelled",
] as const;
export type Status = (typeof STATUSES)[number];

/** States a row does not leave by itself; a batch whose rows are all here is finished. */
export const TERMINAL_STATUSES: readonly Status[] = ["archived", "failed", "cancelled"];

/**
 * States with an index of their rows (keys.stateIndex): the ones a row may sit in waiting for a
 * job (the reconciler walks them), and `failed` (what `retry` walks). Archived and cancelled rows,
 * the bulk of a finished batch, cost no index entry.
 */
export const INDEXED_STATUSES = ["queued", "submitted", "generating", "archiving", "failed"] as const;
export type IndexedStatus = (typeof INDEXED_STATUSES)[number];

/** One validated manifest row, as the producer hands it to the ledger. */
export interface NewRow {
  /** Row id, `[A-Za-z0-9._-]{1,128}`, unique within the batch. */
  id: string;
  /** Physical line where the row starts in the manifest. */
  line: number;
  prompt: string;
  /** The effective API parameters (after defaults and `--set`), stored as JSON. */
  params: object;
  /** Manifest columns that are not parameters, carried to results and sidecars. */
  metadata: Record<string, string>;
  /** Upper-bound estimate in credits. */
  estimatedCredits: number;
}

/**
 * What `addRows` did with each row: `new` was recorded (add its submit job); `held` was recorded
 * in a window-managed batch (`AddRowsMeta.submitWindow`): no job now, `feedWindow` gives it one in
 * its turn; `duplicate-queued` already existed and is still queued and due a job (re-add it:
 * BullMQ ignores an existing jobId, and a crash between the ledger write and `addBulk` must not
 * lose the row); `duplicate` already existed and moved on (or is held), or appeared earlier in the
 * same call.
 */
export type AddRowOutcome = "new" | "held" | "duplicate-queued" | "duplicate";

/** Batch-level facts `addRows` may record. */
export interface AddRowsMeta {
  /** Manifest file the batch was created from (kept from the first call that gives one). */
  file?: string;
  /** Credit budget to set in the same atomic step, so no row is ever visible without it. */
  budget?: number;
  /**
   * `enqueue --no-reuse`: the batch's rows are never archived from the result index (a fresh
   * render), set in the same atomic step as the first rows. Once set, it stays. @defaultValue unchanged
   */
  noReuse?: boolean;
  /**
   * KIE_SUBMIT_WINDOW: a batch created by this call gets its rows' submit jobs a window at a time
   * (`Ledger.feedWindow`), this many fed-and-queued rows at most; later rows are `held`. A batch
   * that is window-managed takes the new size; one created without it stays as it is.
   * @defaultValue undefined: every new row is `new` (the caller adds its job)
   */
  submitWindow?: number;
  /**
   * The BullMQ priority of the batch's submit jobs, kept for the jobs fed later: written when the
   * batch keeps none (its creation), over a kept one only with `replacePriority`.
   * @defaultValue unchanged
   */
  priority?: number;
  /**
   * `priority` replaces the one the batch keeps (enqueue --priority given; a healing enqueue
   * without it must not move a batch's held rows to the default). @defaultValue false
   */
  replacePriority?: boolean;
  /**
   * The batch must exist already (an enqueue's chunks after its first): one deleted meanwhile (a
   * purge) is refused (`batch_gone`), never made again without the budget and settings the
   * first chunk gave it. @defaultValue false: a missing batch is created
   */
  existing?: boolean;
}

/** One stored image of a row. */
export interface ArchivedImage {
  /** Store key, e.g. `batch/id.png`. */
  key: string;
  /** Human-readable location (`s3://...` or an absolute path). */
  location: string;
  bytes: number;
  sha256: string;
  contentType: string;
}

/** A row as read back from the ledger, JSON fields parsed. */
export interface RowRecord {
  batch: string;
  id: string;
  line: number;
  /** Insertion order within the batch; appends continue the sequence. */
  seq: number;
  prompt: string;
  params: Record<string, unknown>;
  metadata: Record<string, string>;
  estimatedCredits: number;
  status: Status;
  /** The current (latest) task. */
  taskId?: string;
  /** Every task ever created for this row, resubmits included, oldest first. */
  taskIds: string[];
  /** The key (short hash) each task was created with, by task id; absent for a task of no pool. */
  taskKeys?: Record<string, string>;
  resubmits: number;
  /** Submits whose answer was lost (the row may have been paid for twice). */
  uncertain: number;
  images: ArchivedImage[];
  /** Location of the first image. */
  location?: string;
  bytes?: number;
  sha256?: string;
  /** Credits currently held for this row's pending submit. */
  creditsReserved: number;
  creditsSpent: number;
  /** Credits of create attempts that may have been charged unseen (kept out of the budget for good). */
  creditsUncertain: number;
  error?: string;
  /** Epoch ms, as every timestamp here. */
  createdAt: number;
  updatedAt: number;
  submittedAt?: number;
  generatingAt?: number;
  /** The provider's completion time. */
  completedAt?: number;
  archivedAt?: number;
  /** True while the row waits for room in its batch's budget. */
  waitingBudget: boolean;
  /**
   * `<batch>/<rowId>` of the row whose archived images this row's are copies of (worker/reuse.ts):
   * archived without a create, at 0 credits.
   */
  reusedFrom?: string;
}

/**
 * A row without its body (row-body.ts: the prompt, params, metadata, images and what is derived
 * from the first, error, reusedFrom): its status, tasks, counters and timestamps, read from its
 * hash alone (`Ledger.getRowState`, one command; what the poll reads on every status check).
 */
export type RowState = Omit<
  RowRecord,
  "prompt" | "params" | "metadata" | "images" | "location" | "bytes" | "sha256" | "error" | "reusedFrom"
>;

/** A batch's counters. The per-status counts always sum to `total`. */
export interface BatchSummary extends Record<Status, number> {
  batch: string;
  createdAt: number;
  updatedAt: number;
  /** Set when every row is archived, failed or cancelled; cleared when rows are appended or retried. */
  finishedAt?: number;
  /** Credit budget; absent means none. */
  budget?: number;
  file?: string;
  total: number;
  creditsEstimated: number;
  creditsReserved: number;
  creditsSpent: number;
  /**
   * Credits of create attempts that may have been charged without a task id to show for it (a
   * lost reply): counted against the budget like spent credits, for good.
   */
  creditsUncertain: number;
  uncertain: number;
  resubmits: number;
  waitingBudget: number;
  /**
   * Rows the reconciler found without the job their state needs, and gave one (always set when
   * read from Redis; optional so summaries built by hand need not name it).
   */
  repaired?: number;
  /** Rows archived by copying an earlier row's images (no create, 0 credits). */
  reused?: number;
  /** The batch was enqueued with `--no-reuse`. */
  noReuse?: boolean;
  /**
   * When `kie-batch cancel` last ran on the batch (cleared by `retry`): a row of it whose
   * generation fails is not resubmitted (a new create, paid) but fails.
   */
  cancelledAt?: number;
  /**
   * When `kie-batch purge` marked the batch (epoch ms) and began deleting it: present on a batch
   * whose purge runs or was cut short. Nothing is enqueued to it, retried or swept until the
   * purge, run again, deletes it.
   */
  purging?: number;
  /**
   * Window-managed batches only (`AddRowsMeta.submitWindow`): queued rows with no submit job yet,
   * by design (seq >= `fedSeq`); `feedWindow` gives them one a window at a time.
   */
  held?: number;
  /** Window-managed batches only: rows with seq below this were given their submit job (or moved on). */
  fedSeq?: number;
  /** The BullMQ priority kept for the batch's submit jobs (enqueue --priority); absent: none kept. */
  priority?: number;
}

/**
 * Row fields a transition may set. `null` removes the field (e.g. clearing `error` on retry).
 * Status moves through `to`, credits through `incr` and the budget calls, never through here.
 */
export interface RowUpdate {
  taskId?: string | null;
  /** Also sets `location`, `bytes` and `sha256` from the first image unless given. */
  images?: ArchivedImage[] | null;
  location?: string | null;
  bytes?: number | null;
  sha256?: string | null;
  error?: string | null;
  submittedAt?: number | null;
  generatingAt?: number | null;
  /** With the row in `archiving`, also orders it in the batch's unarchived set. */
  completedAt?: number | null;
  archivedAt?: number | null;
  /** See `RowRecord.reusedFrom`. */
  reusedFrom?: string | null;
}

/** Counters a transition may add to; each applies to the row's field and the batch's alike. */
export const INCREMENTABLE = ["uncertain", "resubmits", "creditsSpent", "creditsReserved", "reused"] as const;
export type Incrementable = (typeof INCREMENTABLE)[number];

export interface TransitionInput {
  /** Only act when the row's current status is one of these; otherwise change nothing. */
  from?: readonly Status[];
  /**
   * Only act when this is the row's current task; otherwise change nothing (refused as by `from`).
   * A poll or archive run about a task the row has since left (a resubmit, a `retry`) moves nothing.
   */
  ifTask?: string;
  to?: Status;
  set?: RowUpdate;
  incr?: Partial<Record<Incrementable, number>>;
  /** Records a task: appended to `taskIds` (once), made current, and mapped for webhooks. */
  addTaskId?: string;
  /** With `addTaskId`: the short hash of the API key that created the task (`RowRecord.taskKeys`). */
  taskKey?: string;
  /**
   * The row comes back only when the move is refused (`row` is then undefined after a move): for
   * a caller that needs nothing of it on success, which saves reading, sending and parsing it.
   */
  rowOnRefusal?: boolean;
  /**
   * Settles a task's cost first, as `Ledger.settleCredits` does (once per task; the reservation
   * released), in the same atomic step and whether the move is then made or refused: the poll's
   * settle and its move to `archiving` in one call. `taskId` absent: the row's current task.
   */
  settle?: { spent: number; taskId?: string };
  /**
   * Only act while the batch carries `cancel`'s mark (`cancelledAt`); refused as by `from` once a
   * `retry` or an append lifted it: the reconciler finishing a cancel cut short.
   */
  ifBatchCancelled?: boolean;
}

export interface TransitionResult {
  /** False when the row does not exist or its status was not in `from`. */
  ok: boolean;
  /**
   * The row after the transition (or as found, when not ok); undefined when it does not exist, and
   * after a move asked with `rowOnRefusal`.
   */
  row: RowRecord | undefined;
  /** This transition made the batch finished. */
  finished: boolean;
  /**
   * A row left `queued` of a window-managed batch whose submit window is below half full with
   * rows held: feed it (`Ledger.feedWindow`; worker/submit-window.ts).
   */
  feed?: boolean;
  /** With `settle`, on a row that exists: what the settle did (the move itself may be refused). */
  settled?: SettleOutcome;
  /** With `settled`: whether the batch has rows parked over its budget now (a settle may free room). */
  parked?: boolean;
  /**
   * On a Cluster, why the task this transition recorded (`addTaskId`) is not confirmed on a
   * replica of its master (none online, WAIT timed out or failed): a failover now could lose it.
   */
  unreplicated?: string;
}

// The budget and window scripts' answers: script-outcomes.ts.
export type { FeedResult, ReserveOutcome, SettleOutcome, WakeCursor, WakeResult } from "./script-outcomes.js";
