/**
 * Every call about a task goes out with the key that created it (recorded with its task id): a
 * status or download-URL call with another account's key would not find the task. A worker that
 * lacks the key leaves the task to one that has it; past a bound, the row fails saying which key.
 */
import type { KeyRole } from "../fleet/key-lease.js";
import type { KeyLane, KeyRing } from "../fleet/key-ring.js";
import type { Ledger } from "../ledger/index.js";
import type { RowRecord, RowState } from "../ledger/types.js";
import { jobKey, type PollJob } from "./jobs.js";
import { delay, done, type StageJob, type StageResult } from "./stage.js";

/** How long a task's poll waits for a worker that has its key before its row fails. @see WorkerSettings.keyMissingGraceMs */
export const KEY_MISSING_GRACE_MS = 15 * 60_000;
/** How often a poll (or archive) job whose key this worker lacks comes back (to any worker). */
export const KEY_MISSING_RECHECK_MS = 30_000;
/**
 * How often the poll of a row already archiving, whose key no running worker has, comes back: it
 * waits for that key while the task's files live (days), so a slower pace than a generation's.
 */
export const ARCHIVING_KEY_RECHECK_MS = 5 * 60_000;

/** A call about a task that only its own key may make, on a worker that lacks that key. */
export class TaskKeyMissingError extends Error {
  override readonly name = "TaskKeyMissingError";
  constructor(
    readonly taskId: string,
    /** The key's short hash. */
    readonly keyId: string,
  ) {
    super(`task ${taskId} was created with API key ${keyId}, which this worker lacks`);
  }
}

/**
 * The key lane a task's calls use: `{}` (no ring: the stage's own `kie` and `fleet`), the lane of
 * its key, or `{ missing }` when this worker does not have that key. A task recorded without a key
 * is the deployment's default key's (`KeyRing.keylessId`), never this worker's first key: asked
 * with another account's key, KIE would not find it, and the row would be paid for again.
 */
export function taskLane(
  keys: KeyRing | undefined,
  row: Pick<RowRecord, "taskKeys">,
  taskId: string,
): Partial<Pick<KeyLane, "kie" | "fleet">> | { missing: string } {
  if (keys === undefined) return {};
  const id = row.taskKeys?.[taskId] ?? keys.keylessId ?? keys.lanes[0]!.id;
  const lane = keys.lane(id);
  return lane ? { kie: lane.kie, fleet: lane.fleet } : { missing: id };
}

/**
 * This worker lacks the key of the job's task: the job comes back later (when any worker may take
 * it). While some live worker of the deployment holds the key (`held`), it waits for one of them;
 * once none has held it for `graceMs`, the row fails naming the key's short hash. Like
 * KIE_MAX_WAIT's failure, the task id and its reservation stay (the task may finish and be
 * charged): `kie-batch retry` with the key back polls the same task.
 */
export async function keyMissing(
  job: StageJob<PollJob>,
  deps: {
    ledger: Pick<Ledger, "transition">;
    clock: { now(): number };
    graceMs: number;
    held?: ((id: string, role: KeyRole) => Promise<boolean>) | undefined;
    releaseInFlight?: ((id: string, jobKey: string) => Promise<void>) | undefined;
    /** Notes the wait for `status` (`KeyRing.noteWait`); a failed note is only logged. */
    noteWait?: ((id: string, role: KeyRole) => Promise<void>) | undefined;
    /** KIE_FILE_LIFETIME: how long a row already archiving waits for the key. */
    fileLifetimeMs: number;
    /** Whether the row's archive job is there (it owns an archiving row). Absent: not asked. */
    archiveJobLive?: ((batch: string, rowId: string) => Promise<boolean>) | undefined;
  },
  keyId: string,
  row: Pick<RowState, "status" | "completedAt">,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  const now = deps.clock.now();
  const recheckMs = Math.min(KEY_MISSING_RECHECK_MS, deps.graceMs);
  if (await deps.held?.(keyId, "poll")) {
    const { keyMissingSince: _since, ...data } = job.data;
    job.log.debug(
      { taskId, key: keyId },
      "this worker lacks the task's API key, another has it: left for it",
    );
    return delay(recheckMs, data);
  }
  const since = job.data.keyMissingSince ?? now;
  // `status` names the key while rows wait for it (its log line is said once a row).
  await deps
    .noteWait?.(keyId, "poll")
    .catch((error: unknown) =>
      job.log.debug({ err: error, key: keyId }, "the wait for the task's API key could not be noted"),
    );
  // Said once a row at warn (then at debug): a poll comes back every 30 s while it waits.
  const say = (message: string, fields: Record<string, unknown> = {}) =>
    job.data.keyMissingSince === undefined
      ? job.log.warn({ taskId, key: keyId, ...fields }, message)
      : job.log.debug({ taskId, key: keyId, ...fields }, message);
  if (row.status === "archiving") return archivingKeyMissing(job, deps, keyId, row, since, say);
  if (now - since < deps.graceMs) {
    say("no running worker has the API key the task was created with: left for a worker that has it");
    return delay(recheckMs, { ...job.data, keyMissingSince: since });
  }
  const error = `task ${taskId} was created with API key ${keyId}, which no worker polling it has had for ${Math.round(deps.graceMs / 1000)} s: give the workers that key again (KIE_API_KEYS), then \`kie-batch retry\` polls the task again`;
  const moved = await deps.ledger.transition(batch, rowId, {
    from: ["submitted", "generating"],
    ifTask: taskId,
    to: "failed",
    set: { error },
  });
  if (moved.ok) {
    // The task is no longer watched: its slot under its key goes back now, not as stale in an hour.
    await deps.releaseInFlight?.(keyId, jobKey(batch, rowId, job.data.resubmit));
    job.log.error({ taskId, key: keyId }, "no worker has the task's API key: row failed");
  } else job.log.warn({ taskId, key: keyId, status: moved.row?.status }, "no worker has the task's API key");
  return done;
}

/**
 * A row already archiving (its image paid for) whose task's key no running worker has: its
 * archive job needs the task's image URLs, which only a status call with that key gives
 * (poll-archiving.ts). The poll stays (delayed, so the reconciler sees a live job and adds
 * nothing, counts no repair) while the task's files live, and the key put back archives it; once
 * they are past KIE_FILE_LIFETIME nothing can, and the row fails naming the key. (It used to end
 * the job at once: the reconciler sent the poll again every sweep for good, and `status` counted
 * each as a crash repaired.)
 */
async function archivingKeyMissing(
  job: StageJob<PollJob>,
  deps: {
    ledger: Pick<Ledger, "transition">;
    clock: { now(): number };
    fileLifetimeMs: number;
    archiveJobLive?: ((batch: string, rowId: string) => Promise<boolean>) | undefined;
  },
  keyId: string,
  row: Pick<RowState, "completedAt">,
  since: number,
  say: (message: string, fields?: Record<string, unknown>) => void,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  // This poll ran again beside the row's archive job (a stall, a lost reply): that job archives
  // the row from the URLs it holds, or fails it itself; failing the row under it could leave its
  // images stored and the row failed, and two jobs would wait side by side.
  if (await deps.archiveJobLive?.(batch, rowId)) return done;
  const lifeLeft = (row.completedAt ?? job.data.submittedAt) + deps.fileLifetimeMs - deps.clock.now();
  if (lifeLeft > 0) {
    say(
      "the task's image waits to be archived for a running worker with the API key it was created with (KIE_API_KEYS)",
      { hoursLeft: Math.round(lifeLeft / 3_600_000) },
    );
    return delay(Math.min(ARCHIVING_KEY_RECHECK_MS, lifeLeft), { ...job.data, keyMissingSince: since });
  }
  const error = `task ${taskId} finished, but its images were never fetched: it was created with API key ${keyId}, which no running worker has had since ${new Date(since).toISOString()}, and its files are past KIE_FILE_LIFETIME`;
  const moved = await deps.ledger.transition(batch, rowId, {
    from: ["archiving"],
    ifTask: taskId,
    to: "failed",
    set: { error },
  });
  if (moved.ok)
    job.log.error(
      { taskId, key: keyId },
      "no worker has the task's API key and its files expired: row failed",
    );
  return done;
}
