import type { Queue } from "bullmq";
import { mebibytes } from "../archive/probe.js";
import type { ArchivePauseKind, ArchivePauseState, PauseKind, PauseState } from "../fleet/index.js";
import { STAGES, type Stage } from "../worker/jobs.js";

/** A pause as the commands show it. */
export interface PauseView {
  kind: PauseKind;
  reason: string;
  /** ISO 8601 (the Redis clock). */
  since: string;
  /** The account it belongs to (sha256 prefix of the key, never the key). */
  accountId: string;
}

/** The deployment's archive pause as the commands show it: archiving waits, submissions go on. */
export interface ArchivePauseView {
  kind: ArchivePauseKind;
  reason: string;
  /** ISO 8601 (the Redis clock). */
  since: string;
  /** ISO 8601: when one worker probes the store next, if known. */
  nextProbeAt: string | null;
}

export interface AccountState {
  accountId: string;
  /** The account name of the key (KIE_ACCOUNTS), when it has one. */
  account?: string;
  paused: PauseView | null;
}

/** Submission state of the accounts a deployment uses. */
export interface FleetState {
  /** The longest-running pause among the accounts, or null when none is paused. */
  paused: PauseView | null;
  accounts: AccountState[];
  /**
   * The deployment's archive pause (the store refuses), or null. Absent where no one read it (a
   * snapshot built without the archive pause, such as the demo's): drawn as running.
   */
  archivePaused?: ArchivePauseView | null;
  /**
   * Stage queues paused in BullMQ itself (bull-board's pause button, with `--allow-actions`):
   * their jobs wait and nothing else says why. Absent where no one read them.
   */
  queuesPaused?: Stage[];
  /**
   * API keys jobs of the deployment waited for within the last 15 minutes that no running worker of
   * their stage holds now (a key removed from KIE_API_KEYS with tasks in flight, or archive workers
   * run apart without it). Absent where no one read them.
   */
  keyWaits?: KeyWaitView[];
}

/** A key jobs of one stage wait for that no live worker of that stage holds. */
export interface KeyWaitView {
  /** The key's short hash (never the key). */
  accountId: string;
  /** Its account name (KIE_ACCOUNTS), when it has one. */
  account?: string;
  /** The stage whose jobs wait: poll (a task's status), archive (an expired result URL's refresh). */
  stage: "poll" | "archive";
  /** ISO 8601: when a job last waited for it. */
  lastAt: string;
}

/** What a key wait means, in words shared by `status` and the dashboard (after the key's name). */
export function keyWaitWords(stage: KeyWaitView["stage"]): { held: string; why: string; after: string } {
  return stage === "poll"
    ? {
        held: "is held by no running worker that polls, and rows wait for it",
        why: "their tasks were created with it",
        after:
          "polling rows fail 15 minutes into the wait (kie-batch retry then polls the same tasks), rows archiving wait while their files live",
      }
    : {
        held: "is held by no running worker that archives, and archive jobs wait for it",
        why: "their result URLs expired, and only the key a task was created with can ask KIE for new ones",
        after:
          "only a worker that runs the archive stage takes those jobs, and they wait while their files live",
      };
}

/** A stage queue as the fleet state reads it (BullMQ's own pause flag). */
export type StageQueuePause = Pick<Queue, "isPaused">;

/** One account's pause, as the fleet module keeps it. */
export interface AccountPause {
  readonly accountId: string;
  /** The account name of the key (KIE_ACCOUNTS), when it has one. */
  readonly account?: string;
  get(): Promise<PauseState | null>;
}

function pauseView(accountId: string, state: PauseState | null): PauseView | null {
  if (!state) return null;
  return { kind: state.kind, reason: state.reason, since: new Date(state.since).toISOString(), accountId };
}

function archivePauseView(state: ArchivePauseState | null): ArchivePauseView | null {
  if (!state) return null;
  // A disk that filled while archiving was paused for another cause: the pause kept its first
  // reason and took the floor its probe now asks for (pause.lua), which the reason must say too.
  const floor =
    state.minFreeBytes !== undefined && !state.reason.includes("KIE_ARCHIVE_MIN_FREE")
      ? `; the disk filled too: the store probe waits for KIE_ARCHIVE_MIN_FREE free (${mebibytes(state.minFreeBytes)})`
      : "";
  // The same for a refusal of the SDK's checksums met then: the probe holds until it is fixed.
  const checksums =
    state.probeMultipart === true && !state.reason.includes("AWS_REQUEST_CHECKSUM_CALCULATION")
      ? "; the store refused the AWS SDK's request checksums too: the store probe holds until AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED is set in the workers' environment"
      : "";
  return {
    kind: state.kind,
    reason: state.reason + floor + checksums,
    since: new Date(state.since).toISOString(),
    nextProbeAt: state.nextProbeAt === undefined ? null : new Date(state.nextProbeAt).toISOString(),
  };
}

/**
 * Reads every account's pause, the deployment's archive pause when `archivePause` is given, and
 * which stage queues are paused in BullMQ when `stageQueues` are.
 */
export async function readFleetState(
  accounts: readonly AccountPause[],
  archivePause?: { get(): Promise<ArchivePauseState | null> },
  stageQueues?: Record<Stage, StageQueuePause>,
  keyWaits?: () => Promise<KeyWaitView[]>,
): Promise<FleetState> {
  // One Promise.all: a failed read rejects it once, none is left unhandled (a Redis blip would
  // otherwise crash the dashboard).
  const [states, archive, queuesPaused, waits] = await Promise.all([
    Promise.all(
      accounts.map(async (a) => ({
        accountId: a.accountId,
        ...(a.account === undefined ? {} : { account: a.account }),
        paused: pauseView(a.accountId, await a.get()),
      })),
    ),
    archivePause ? archivePause.get() : null,
    stageQueues
      ? Promise.all(STAGES.map(async (stage) => ((await stageQueues[stage].isPaused()) ? [stage] : []))).then(
          (found) => found.flat(),
        )
      : undefined,
    keyWaits ? keyWaits() : undefined,
  ]);
  const paused = states
    .map((s) => s.paused)
    .filter((p): p is PauseView => p !== null)
    .sort((a, b) => a.since.localeCompare(b.since));
  return {
    paused: paused[0] ?? null,
    accounts: states,
    archivePaused: archivePauseView(archive),
    ...(queuesPaused ? { queuesPaused } : {}),
    ...(waits ? { keyWaits: waits } : {}),
  };
}

/** A line per key and stage whose jobs wait for it while no running worker of that stage holds it. */
function keyWaitLines(keyWaits: readonly KeyWaitView[] | undefined): string[] {
  return (keyWaits ?? []).map(({ accountId, account, stage, lastAt }) => {
    const name = account === undefined ? "" : ` (${account})`;
    const words = keyWaitWords(stage);
    return `fleet: API key ${accountId}${name} ${words.held} (last at ${lastAt}): ${words.why}. Give a worker that key again (KIE_API_KEYS): ${words.after}`;
  });
}

/** A line per stage queue paused in BullMQ. */
function queuePauseLines(queuesPaused: readonly Stage[] | undefined): string[] {
  return (queuesPaused ?? []).map(
    (stage) =>
      `queue: ${stage} PAUSED in BullMQ (bull-board's pause button): its jobs wait; \`kie-batch resume\` resumes it`,
  );
}

/** The archive pause's line, or none while archiving runs. */
function archivePauseLines(archivePaused: ArchivePauseView | null | undefined): string[] {
  if (!archivePaused) return [];
  const next = archivePaused.nextProbeAt ? `; next store probe ${archivePaused.nextProbeAt}` : "";
  return [
    `archive: PAUSED since ${archivePaused.since} (${archivePaused.kind}): ${archivePaused.reason}${next}; resumes by itself when the store answers`,
  ];
}

/** Human lines for the fleet's state: one per account (or a note when no account is known), then the archive pause and any stage queue paused in BullMQ. */
export function fleetLines(state: FleetState, queuePrefix?: string): string[] {
  const pauses = [
    ...keyWaitLines(state.keyWaits),
    ...archivePauseLines(state.archivePaused),
    ...queuePauseLines(state.queuesPaused),
  ];
  if (state.accounts.length === 0) {
    const where = queuePrefix === undefined ? "" : ` for queue prefix "${queuePrefix}"`;
    return [
      `fleet: no KIE account known${where} (no worker has started yet; set KIE_API_KEY to see its pause state)`,
      ...pauses,
    ];
  }
  return [
    ...state.accounts.map(({ accountId, account, paused }) => {
      const name = account === undefined ? "" : ` (${account})`;
      return paused
        ? `fleet: account ${accountId}${name} PAUSED since ${paused.since} (${paused.kind}): ${paused.reason}`
        : `fleet: account ${accountId}${name} running`;
    }),
    ...pauses,
  ];
}
