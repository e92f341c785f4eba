import type { ArchivePauseKind, PauseKind } from "../fleet/index.js";
import type { BatchSummary } from "../ledger/index.js";

/**
 * What an operator is told, and how. Each event has a deterministic id: every worker that notices
 * the same thing derives the same id, so the fleet-wide claim (claims.ts) lets one of them send.
 */

/** Submissions stopped fleet-wide. `by`: the worker whose `pause` started it, or a worker that saw it. */
interface PausedEvent {
  event: "submissions.paused";
  account: string;
  kind: PauseKind;
  reason: string;
  /** Epoch ms (Redis clock): when the pause began; part of the id. */
  since: number;
  by: "worker" | "observed";
}

/** A pause ended. `by`: a successful probe (credits back, usage cap lifted), or seen gone (`kie-batch resume`). */
interface ResumedEvent {
  event: "submissions.resumed";
  account: string;
  kind: PauseKind;
  /** The reason the pause had. */
  reason: string;
  since: number;
  resumedAt: number;
  by: "probe" | "observed";
}

/** Archiving stopped fleet-wide: the deployment's store refuses. Submissions go on. */
interface ArchivePausedEvent {
  event: "archiving.paused";
  kind: ArchivePauseKind;
  reason: string;
  /** Epoch ms (Redis clock): when the pause began; part of the id. */
  since: number;
  by: "observed";
}

/** The store answered a probe again (or the pause was cleared): archiving resumes. */
interface ArchiveResumedEvent {
  event: "archiving.resumed";
  kind: ArchivePauseKind;
  reason: string;
  since: number;
  resumedAt: number;
  by: "observed";
}

interface BatchFinishedEvent {
  event: "batch.finished";
  summary: BatchSummary & { finishedAt: number };
}

/** The oldest image of a batch still waiting for its archive passed the age where its URL may be gone. */
interface UnarchivedEvent {
  event: "image.unarchived_24h";
  batch: string;
  rowId: string;
  completedAt: number;
  /** Rows of the batch in `archiving`. */
  archiving: number;
  now: number;
  /** When KIE deletes the files (completion + 14 days). */
  expiresAt: number;
}

export type AlertEvent =
  | PausedEvent
  | ResumedEvent
  | ArchivePausedEvent
  | ArchiveResumedEvent
  | BatchFinishedEvent
  | UnarchivedEvent;
export type AlertEventName = AlertEvent["event"];

const DAY_MS = 86_400_000;

/** The event's id: the same fact gives the same id on every worker. */
export function alertId(event: AlertEvent): string {
  switch (event.event) {
    case "submissions.paused":
      return `${event.event}:${event.account}:${event.since}`;
    case "submissions.resumed":
      return `${event.event}:${event.account}:${event.since}`;
    case "archiving.paused":
    case "archiving.resumed":
      // The pause is the deployment's, and so are the claims: its start names it.
      return `${event.event}:${event.since}`;
    case "batch.finished":
      // A batch finishes again after rows are appended or retried: that is a new event.
      return `${event.event}:${event.summary.batch}:${event.summary.finishedAt}`;
    case "image.unarchived_24h":
      // At most one per batch per (UTC) day, however many images are late.
      return `${event.event}:${event.batch}:${Math.floor(event.now / DAY_MS)}`;
  }
}

/** The JSON body: `text` for Slack-style receivers, then the same facts as fields. */
export interface AlertPayload {
  text: string;
  event: AlertEventName;
  id: string;
  /** KIE_QUEUE_PREFIX: which deployment speaks. */
  deployment: string;
  /** ISO 8601, when the payload was built. */
  at: string;
  [field: string]: unknown;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 2 * 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86_400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

/** The fields every pause alert carries, submissions' or archiving's. */
function pauseFields(event: { kind: string; reason: string; since: number; by: string }) {
  return { kind: event.kind, reason: event.reason, since: iso(event.since), by: event.by };
}

/** A pause's fields plus when and after how long it ended. */
function resumeFields(event: { kind: string; reason: string; since: number; resumedAt: number; by: string }) {
  return {
    ...pauseFields(event),
    resumedAt: iso(event.resumedAt),
    pausedMs: Math.max(0, event.resumedAt - event.since),
  };
}

export function alertPayload(event: AlertEvent, deployment: string, now: number): AlertPayload {
  const head = { event: event.event, id: alertId(event), deployment, at: iso(now) };
  const who = `kie-batch [${deployment}]`;
  switch (event.event) {
    case "submissions.paused":
      return {
        text: `${who}: submissions PAUSED (${event.kind}) on account ${event.account}: ${event.reason}`,
        ...head,
        account: event.account,
        ...pauseFields(event),
      };
    case "submissions.resumed":
      return {
        text: `${who}: submissions RESUMED on account ${event.account} after ${duration(event.resumedAt - event.since)} (${event.kind} pause${event.by === "probe" ? ", lifted by a successful probe" : ""})`,
        ...head,
        account: event.account,
        ...resumeFields(event),
      };
    case "archiving.paused":
      return {
        text: `${who}: archiving PAUSED (${event.kind}): ${event.reason}. Submissions go on; finished images wait in archiving and archiving resumes by itself once the store answers a probe`,
        ...head,
        ...pauseFields(event),
      };
    case "archiving.resumed":
      return {
        text: `${who}: archiving RESUMED after ${duration(event.resumedAt - event.since)} (${event.kind} pause lifted: the archive store answers again)`,
        ...head,
        ...resumeFields(event),
      };
    case "batch.finished": {
      const s = event.summary;
      return {
        text: `${who}: batch "${s.batch}" finished: ${s.archived} archived, ${s.failed} failed, ${s.cancelled} cancelled of ${s.total}; ${s.creditsSpent} credits spent (estimated ${s.creditsEstimated})`,
        ...head,
        batch: s.batch,
        total: s.total,
        archived: s.archived,
        failed: s.failed,
        cancelled: s.cancelled,
        creditsSpent: s.creditsSpent,
        creditsEstimated: s.creditsEstimated,
        uncertain: s.uncertain,
        resubmits: s.resubmits,
        createdAt: iso(s.createdAt),
        finishedAt: iso(s.finishedAt),
        durationMs: Math.max(0, s.finishedAt - s.createdAt),
      };
    }
    case "image.unarchived_24h": {
      const ageMs = Math.max(0, event.now - event.completedAt);
      return {
        text: `${who}: batch "${event.batch}": image of row ${event.rowId} finished ${duration(ageMs)} ago and is still not archived (${event.archiving} waiting); its URL may be gone already, KIE deletes it at ${iso(event.expiresAt)}`,
        ...head,
        batch: event.batch,
        rowId: event.rowId,
        archiving: event.archiving,
        completedAt: iso(event.completedAt),
        ageMs,
        expiresAt: iso(event.expiresAt),
      };
    }
  }
}
