import type { ArchiveFromUrlOptions } from "../archive/index.js";
import { isStoreOutage } from "../archive/index.js";
import type { KeyRing } from "../fleet/key-ring.js";
import type { KieApi } from "../kie/types.js";
import type { ArchivedImage, RowRecord } from "../ledger/types.js";
import type { FleetPort } from "./ports.js";
import type { StageJob } from "./stage.js";
import { taskLane } from "./task-key.js";

/**
 * Result URLs asked for again through KIE's download-url (archive.ts's `archiveOne`): an expired
 * one at once, one that keeps failing for now from its third try on. Every refresh waits for a
 * status-call slot (KIE_POLL_RATE), as a status call does.
 */

/**
 * From this try on (the third), a result URL that still fails for now (5xx, a timeout, a reset) is
 * tried through a refreshed URL first: KIE's docs give download-url for a URL that "has stopped
 * answering", and a broken file host would otherwise be met again until the file expires. The
 * first two tries leave a passing hiccup to the URL itself: no refresh call for it.
 */
export const TRANSIENT_REFRESH_FROM_TRY = 2;

/** What a refresh uses of the archive stage's ports. */
interface RefreshDeps {
  kie: Pick<KieApi, "refreshDownloadUrl">;
  fleet?: Pick<FleetPort, "pollSlot">;
  keys?: KeyRing;
}

/** The archive run a refresh is made for: its task and tries, its signal and log. */
type RefreshRun = Pick<StageJob<{ taskId: string; tries: number }>, "data" | "signal" | "log">;

/**
 * A result URL that keeps failing for now, tried through a refreshed URL. Whatever the refresh or
 * the fresh URL meets, the try fails with the result URL's own error, so it is tried again later
 * as before (a worker without the task's key just tries the URL again).
 */
export async function fromRefreshedAfterTransient(
  deps: RefreshDeps,
  job: RefreshRun,
  row: Pick<RowRecord, "taskKeys">,
  options: Omit<ArchiveFromUrlOptions, "url"> & {
    copyImage: (options: ArchiveFromUrlOptions) => Promise<ArchivedImage>;
  },
  url: string,
  index: number,
  error: unknown,
): Promise<ArchivedImage> {
  const lane = taskLane(deps.keys, row, job.data.taskId);
  if ("missing" in lane) throw error;
  const { copyImage, ...copy } = options;
  try {
    const fresh = await refreshedUrl(deps, lane, url, job.signal);
    const image = await copyImage({ ...copy, url: fresh });
    job.log.info(
      { index, tries: job.data.tries + 1 },
      "result URL kept failing; archived from a refreshed URL",
    );
    return image;
  } catch (refreshFailed) {
    // A store that refuses as a whole (a full disk) pauses archiving: its error stands.
    if (job.signal.aborted || isStoreOutage(refreshFailed)) throw refreshFailed;
    job.log.info({ index, err: refreshFailed }, "a refreshed URL did not give the image either");
    throw error;
  }
}

/** A fresh URL for `url` from KIE's download-url, with the task's key, once a status-call slot is free. */
export async function refreshedUrl(
  deps: Pick<RefreshDeps, "kie" | "fleet">,
  lane: { kie?: Pick<KieApi, "refreshDownloadUrl">; fleet?: Pick<FleetPort, "pollSlot"> },
  url: string,
  signal: AbortSignal,
): Promise<string> {
  await (lane.fleet ?? deps.fleet)?.pollSlot(signal);
  return (lane.kie ?? deps.kie).refreshDownloadUrl(url, signal);
}
