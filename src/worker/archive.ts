import {
  type ArchiveFromUrlOptions,
  archivedImages,
  archiveFromUrl,
  buildSidecar,
  imageKeyBase,
  isDownloadError,
  isRetryableArchiveError,
  isStoreOutage,
  objectMetadata,
  putSidecar,
  sidecarKey,
} from "../archive/index.js";
import type { ArchiveStore } from "../archive/types.js";
import { retryDelay } from "../core/backoff.js";
import type { Clock } from "../core/clock.js";
import { failpoint } from "../core/failpoints.js";
import type { KeyRing } from "../fleet/key-ring.js";
import { isKieError } from "../kie/errors.js";
import type { KieApi } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { ArchivedImage, RowRecord } from "../ledger/types.js";
import { type ArchiveGateDeps, pauseArchiving, waitForStore } from "./archive-gate.js";
import {
  REFRESHED_ON,
  REFUSED_TRIES,
  type RefreshFleet,
  refreshedUrl,
  refreshUnanswered,
} from "./archive-refresh.js";
import { type ArchiveJob, archiveJobSchema } from "./jobs.js";
import type { ArchiveSlots, WorkerSettings } from "./ports.js";
import { type ReuseDeps, recordResult } from "./reuse.js";
import { delay, done, errorMessage, type StageDefinition, type StageJob, type StageResult } from "./stage.js";
import {
  ARCHIVING_KEY_RECHECK_MS,
  KEY_MISSING_GRACE_MS,
  KEY_MISSING_RECHECK_MS,
  TaskKeyMissingError,
  taskLane,
} from "./task-key.js";

/** The ledger calls the archive stage makes. */
type ArchiveLedger = Pick<Ledger, "getRow" | "transition">;

/** What the archive stage uses of the worker's ports: a test fakes just these. */
export interface ArchiveDeps extends ArchiveGateDeps {
  kie: Pick<KieApi, "refreshDownloadUrl">;
  /**
   * A refresh (download-url) is a status-like call: it waits for a slot of KIE_POLL_RATE as a
   * status call does, so a broken file host cannot turn every archive try into an unpaced call.
   * Absent (tests): not paced.
   */
  fleet?: RefreshFleet;
  /** The worker's keys: a fresh download URL is asked with the key that created the task. */
  keys?: KeyRing;
  ledger: ArchiveLedger;
  store: Pick<ArchiveStore, "put" | "head" | "remove" | "locationOf" | "freeBytes" | "putMultipart">;
  clock: Pick<Clock, "now" | "sleep">;
  settings: Pick<WorkerSettings, "downloadHosts" | "fileLifetimeMs" | "storeProbeMs" | "storeMinFreeBytes">;
  /**
   * Streams one image from its URL into the store (download with the host guard, magic bytes,
   * checksum). A test passes a fake so no HTTP server is needed. @defaultValue archiveFromUrl
   */
  copyImage?: (options: ArchiveFromUrlOptions) => Promise<ArchivedImage>;
  /** Where an archived row's request is recorded for reuse (reuse.ts). Absent: not recorded. */
  reuse?: Pick<ReuseDeps, "results" | "clock">;
  /** The process's archive slots, which inline archives share (archive-inline.ts). Absent: none kept. */
  archiveSlots?: ArchiveSlots;
}

/** What archiving a row uses of its job: the archive stage's job, or the poll job archiving inline. */
export type ArchiveRun = Pick<StageJob<ArchiveJob>, "data" | "signal" | "log">;

/** Archive retries back off up to this; they go on as long as the image is expected to live. */
const ARCHIVE_RETRY_MAX_MS = 5 * 60_000;

export const archiveStage = {
  name: "archive",
  schema: archiveJobSchema,
  run: runArchive,
  owns: ["archiving"] as const,
} satisfies StageDefinition<ArchiveJob>;

/** `archiveRow`'s answer when the store refused as a whole: archiving is paused, go to the gate. */
export const STORE_REFUSED = Symbol("store refused");

/**
 * The archive stage: every URL of a finished task streamed to the store, then the row sidecar,
 * then the ledger. Re-running it is harmless: an image already stored under the same task is not
 * written again. While the store refuses (a credential, a permission, a missing bucket) archiving
 * is paused fleet-wide and the job waits at the gate: the row stays `archiving`, never fails for it.
 */
async function runArchive(job: StageJob<ArchiveJob>, deps: ArchiveDeps): Promise<StageResult<ArchiveJob>> {
  // Held while waiting at the gate too: a paused store refuses inline archives anyway.
  const release = deps.archiveSlots?.take();
  try {
    for (;;) {
      await waitForStore(deps, job.signal, job.log);
      const result = await archiveRow(job, deps);
      if (result !== STORE_REFUSED) return result;
    }
  } finally {
    release?.();
  }
}

/**
 * One try at archiving the row: the archive stage's, and the poll's inline one (archive-inline.ts).
 * `known`: the row as the caller's own move to `archiving` returned it, so it is not read again,
 * nor is the store asked for its sidecar: no archive of this task can have started since the move
 * (its archive job is added after an inline try), and one from an earlier spell in `archiving`
 * (a row failed, then polled again by `retry`) is written again whole, its files replaced by the
 * same bytes. Either way the row is archived only while it is `archiving` for the job's task.
 */
export async function archiveRow(
  job: ArchiveRun,
  deps: ArchiveDeps,
  known?: RowRecord,
): Promise<StageResult<ArchiveJob> | typeof STORE_REFUSED> {
  const data = job.data;
  const { batch, rowId, taskId } = data;
  const row = known ?? (await deps.ledger.getRow(batch, rowId));
  if (row?.status !== "archiving" || row.taskId !== taskId) return done;

  let images: ArchivedImage[] = [];
  /** The images a sidecar found for this task names: every one stored, nothing left to download. */
  let stored: ArchivedImage[] | undefined;
  try {
    // The sidecar is written last: when it is there for this task, every image is too (each
    // image's put had resolved, durable, before it was written).
    const key = sidecarKey(batch, row.id);
    stored = known
      ? undefined
      : archivedImages(await deps.store.head(key, job.signal), key, taskId, deps.store);
    if (stored) {
      images = stored;
      job.log.info("already archived under this task: images not written again");
    } else {
      for (const [index, url] of data.imageUrls.entries()) {
        images.push(await archiveOne(deps, job, row, url, index));
      }
      await failpoint("archive.after-upload");
    }
    // Written again when found: the put that left it may have failed after its rename (a folder
    // fsync's EIO, a file thread lost), so it is on disk but not sure to stay; this put's own
    // durability is what the row's move to archived rests on.
    const sidecar = buildSidecar(row, images, {
      taskId,
      completedAt: data.completedAt,
      archivedAt: deps.clock.now(),
    });
    await putSidecar(deps.store, sidecar, { signal: job.signal });
  } catch (error) {
    if (job.signal.aborted) throw error;
    if (isStoreOutage(error)) {
      // The store's problem, not the row's: every row would fail the same way.
      await pauseArchiving(deps, error, job.log);
      return STORE_REFUSED;
    }
    const now = deps.clock.now();
    const lifeLeft = data.completedAt + deps.settings.fileLifetimeMs - now;
    if (error instanceof TaskKeyMissingError && lifeLeft > 0) {
      // No try counted: the job comes back (to any worker) while the file may still be refreshed.
      const since = data.keyMissingSince ?? now;
      // `status` names the key while no running worker that archives holds it (KeyRing.noteWait):
      // only such a worker takes this job (one that only polls with the key never will).
      const held = (await deps.keys?.held?.(error.keyId, "archive").catch(() => true)) ?? false;
      if (!held) await deps.keys?.noteWait?.(error.keyId, "archive").catch(() => {});
      // Said once a job at warn (then at debug): it comes back every 30 s, then every 5 minutes
      // past the first 15, for as long as the file lives (days).
      const say =
        data.keyMissingSince === undefined ? job.log.warn.bind(job.log) : job.log.debug.bind(job.log);
      say(
        { taskId, key: error.keyId },
        held
          ? "result URL expired and this worker lacks the task's API key, which another worker has: left for it"
          : "result URL expired and no running worker that archives has the task's API key: left for a worker that has it (KIE_API_KEYS)",
      );
      const recheck = now - since < KEY_MISSING_GRACE_MS ? KEY_MISSING_RECHECK_MS : ARCHIVING_KEY_RECHECK_MS;
      return delay(Math.min(recheck, lifeLeft), { ...data, keyMissingSince: since });
    }
    // The archive module classifies downloads and stores (a full disk or S3's 5xx: again; access
    // denied or a missing bucket: no); a KieError here is a refresh of an expired URL. A host that
    // refused the result URL and a fresh one (a CDN's rate rule, a file not there yet) is asked
    // again, counted apart from other errors' tries, before the row fails: the file may live days.
    const refusal = isDownloadError(error) && REFRESHED_ON.has(error.code);
    const refusals = (data.refusals ?? 0) + (refusal ? 1 : 0);
    const retryable = refusal
      ? refusals < REFUSED_TRIES
      : isKieError(error)
        ? error.retryable
        : isRetryableArchiveError(error);
    // With the images stored, only the sidecar's rewrite is left: no file of KIE's to outlive,
    // so it is tried again however late (a full disk, S3's 5xx), never failing a stored row.
    if (retryable && (lifeLeft > 0 || stored)) {
      const backoff = retryDelay(data.tries, { baseMs: 2_000, maxMs: ARCHIVE_RETRY_MAX_MS });
      const wait = stored ? backoff : Math.min(backoff, lifeLeft);
      job.log.warn({ err: error, tries: data.tries + 1, retryInMs: wait }, "archive failed; retrying");
      return delay(wait, { ...data, tries: data.tries + 1, ...(refusal ? { refusals } : {}) });
    }
    await deps.ledger.transition(batch, rowId, {
      from: ["archiving"],
      ifTask: taskId,
      to: "failed",
      set: { error: `archive failed: ${errorMessage(error)} [task ${taskId}]` },
    });
    job.log.warn({ err: error }, "archive failed; row failed");
    return done;
  }

  await failpoint("archive.after-sidecar");
  const moved = await deps.ledger.transition(batch, rowId, {
    from: ["archiving"],
    ifTask: taskId,
    to: "archived",
    set: { images, archivedAt: deps.clock.now(), error: null },
    rowOnRefusal: true,
  });
  if (!moved.ok) {
    // Purged meanwhile (or moved by another run): the files stay in the store, the ledger says nothing of them.
    job.log.info(
      { location: images[0]?.location, status: moved.row?.status ?? null },
      "archived files of a row no longer archiving (purged?): left in the store",
    );
    return done;
  }
  job.log.info({ location: images[0]?.location }, "archived");
  // Its own command after the move (another hash tag): a lost write costs only a future reuse.
  await recordResult(deps.reuse, row, images, taskId, job.log);
  return done;
}

/**
 * From this try on (the third), a result URL that still fails for now (5xx, a timeout, a reset) is
 * tried through a refreshed URL first: KIE's docs give download-url for a URL that "has stopped
 * answering", and a broken file host would otherwise be met again until the file expires. The
 * first two tries leave a passing hiccup to the URL itself: no refresh call for it.
 */
export const TRANSIENT_REFRESH_FROM_TRY = 2;

async function archiveOne(
  deps: ArchiveDeps,
  job: ArchiveRun,
  row: RowRecord,
  url: string,
  index: number,
): Promise<ArchivedImage> {
  const base = imageKeyBase(row, index);
  const copyImage = deps.copyImage ?? archiveFromUrl;
  const options = {
    store: deps.store,
    key: base,
    allowHosts: deps.settings.downloadHosts,
    metadata: objectMetadata(row, job.data.taskId),
    signal: job.signal,
  };
  try {
    return await copyImage({ ...options, url });
  } catch (error) {
    if (!isDownloadError(error)) throw error;
    // 5xx, a timeout, a reset: the URL itself on the first two tries (a passing hiccup), then also
    // a refreshed one (a file host that has stopped answering).
    const stillFailing = error.code === "transient" && job.data.tries >= TRANSIENT_REFRESH_FROM_TRY;
    if (!stillFailing && !REFRESHED_ON.has(error.code)) throw error;
    // Ask KIE for a fresh URL, once, with the task's own key (another account's would not find
    // it); a worker without it leaves the job to one with it (or tries a failing URL again).
    const lane = taskLane(deps.keys, row, job.data.taskId);
    if ("missing" in lane)
      throw stillFailing ? error : new TaskKeyMissingError(job.data.taskId, lane.missing);
    const fromFreshUrl = async () =>
      copyImage({ ...options, url: await refreshedUrl(deps, lane, url, job.signal) });
    if (error.code === "expired") {
      // 403/404/410: what an expired result URL answers. What the fresh one meets then stands.
      job.log.info({ index }, "result URL expired; archiving from a refreshed URL");
      return await fromFreshUrl();
    }
    // Another 4xx, a page that is not the image, or a host still failing: a fresh URL is a chance,
    // not a diagnosis. If it does not give the image, the try ends with what the result URL
    // answered (the row fails, or a failing host is tried again later), not with what the refresh met.
    try {
      const image = await fromFreshUrl();
      job.log.info(
        { index, code: error.code, tries: job.data.tries + 1 },
        "result URL did not give the image; archived from a refreshed URL",
      );
      return image;
    } catch (refreshFailed) {
      // A store that refuses as a whole (a full disk) pauses archiving: its error stands. So does
      // a download-url call that got no answer about the file (a 429, KIE's maintenance, a bad key,
      // a 5xx): the fresh URL was not asked, so nothing is judged; the try comes back later, as a
      // status call's would, while the file lives (failing the row on the result URL's error then
      // lost a paid image to a passing rate limit).
      if (job.signal.aborted || isStoreOutage(refreshFailed) || refreshUnanswered(refreshFailed))
        throw refreshFailed;
      job.log.info({ index, err: refreshFailed }, "a refreshed URL did not give the image either");
      throw error;
    }
  }
}
