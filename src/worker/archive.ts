import { createHash } from "node:crypto";
import { archiveFromUrl, isDownloadError, isRetryableArchiveError, putJson } from "../archive/index.js";
import { retryDelay } from "../core/backoff.js";
import { isKieError } from "../kie/errors.js";
import type { ArchivedImage, RowRecord } from "../ledger/types.js";
import type { ArchiveJob } from "./jobs.js";
import type { StageDeps } from "./ports.js";
import { delay, done, errorMessage, type StageJob, type StageResult } from "./stage.js";

/** Archive retries back off up to this; they go on as long as the image is expected to live. */
const ARCHIVE_RETRY_MAX_MS = 5 * 60_000;

/**
 * The archive stage: every URL of a finished task streamed to the store, then the row sidecar,
 * then the ledger. Re-running it is harmless: an image already stored under the same task is not
 * written again.
 */
export async function runArchive(
  job: StageJob<ArchiveJob>,
  deps: StageDeps,
): Promise<StageResult<ArchiveJob>> {
  const data = job.data;
  const { batch, rowId, taskId } = data;
  const row = await deps.ledger.getRow(batch, rowId);
  if (row?.status !== "archiving" || row.taskId !== taskId) return done;

  const sidecarKey = `${batch}/${row.id}.json`;
  let images: ArchivedImage[] = [];
  try {
    const stored = await alreadyArchived(deps, sidecarKey, taskId, job.signal);
    if (stored) {
      images = stored;
      job.log.info("already archived under this task: not written again");
    } else {
      for (const [index, url] of data.imageUrls.entries()) {
        images.push(await archiveOne(deps, job, row, url, index));
      }
      await putJson(deps.store, sidecarKey, sidecarOf(row, images, data), {
        signal: job.signal,
        metadata: { "task-id": taskId, images: images.map(encodeImage).join(",") },
      });
    }
  } catch (error) {
    if (job.signal.aborted) throw error;
    const now = deps.clock.now();
    const lifeLeft = data.completedAt + deps.settings.fileLifetimeMs - now;
    // The archive module classifies downloads and stores (a full disk or S3's 5xx: again; access
    // denied or a missing bucket: no); a KieError here is a refresh of an expired URL.
    const retryable = isKieError(error) ? error.retryable : isRetryableArchiveError(error);
    if (retryable && lifeLeft > 0) {
      const wait = Math.min(retryDelay(data.tries, { baseMs: 2_000, maxMs: ARCHIVE_RETRY_MAX_MS }), lifeLeft);
      job.log.warn({ err: error, tries: data.tries + 1, retryInMs: wait }, "archive failed; retrying");
      return delay(wait, { ...data, tries: data.tries + 1 });
    }
    await deps.ledger.transition(batch, rowId, {
      from: ["archiving"],
      to: "failed",
      set: { error: `archive failed: ${errorMessage(error)} [task ${taskId}]` },
    });
    job.log.warn({ err: error }, "archive failed; row failed");
    return done;
  }

  await deps.ledger.transition(batch, rowId, {
    from: ["archiving"],
    to: "archived",
    set: { images, archivedAt: deps.clock.now(), error: null },
  });
  job.log.info({ location: images[0]?.location }, "archived");
  return done;
}

async function archiveOne(
  deps: StageDeps,
  job: StageJob<ArchiveJob>,
  row: RowRecord,
  url: string,
  index: number,
): Promise<ArchivedImage> {
  const base = `${row.batch}/${index === 0 ? row.id : `${row.id}-${index + 1}`}`;
  const options = {
    store: deps.store,
    key: base,
    allowHosts: deps.settings.downloadHosts,
    metadata: metadataOf(row, job.data.taskId),
    signal: job.signal,
  };
  try {
    return await archiveFromUrl({ ...options, url });
  } catch (error) {
    if (!isDownloadError(error) || error.code !== "expired") throw error;
    // The result URL stopped answering: ask KIE for a fresh one, once.
    const fresh = await deps.kie.refreshDownloadUrl(url, job.signal);
    job.log.info({ index }, "result URL expired; archiving from a refreshed URL");
    return await archiveFromUrl({ ...options, url: fresh });
  }
}

/**
 * The sidecar is written last, with the task id and each image's checksum in its (ASCII)
 * metadata: when it is there for this task, every image is too, and a re-run writes nothing.
 */
async function alreadyArchived(
  deps: StageDeps,
  sidecarKey: string,
  taskId: string,
  signal: AbortSignal,
): Promise<ArchivedImage[] | undefined> {
  const head = await deps.store.head(sidecarKey, signal);
  if (!head || head.metadata["task-id"] !== taskId || !head.metadata.images) return undefined;
  const images = head.metadata.images.split(",").map((entry) => decodeImage(deps, sidecarKey, entry));
  return images.every((image) => image !== undefined) ? (images as ArchivedImage[]) : undefined;
}

function encodeImage(image: ArchivedImage): string {
  return `${image.key.slice(image.key.lastIndexOf("/") + 1)}:${image.bytes}:${image.sha256}`;
}

function decodeImage(deps: StageDeps, sidecarKey: string, entry: string): ArchivedImage | undefined {
  const match = /^([A-Za-z0-9._-]+\.(png|jpg)):(\d+):([0-9a-f]{64})$/.exec(entry);
  if (!match) return undefined;
  const key = `${sidecarKey.slice(0, sidecarKey.lastIndexOf("/") + 1)}${match[1]}`;
  return {
    key,
    location: deps.store.locationOf(key),
    bytes: Number(match[3]),
    sha256: match[4]!,
    contentType: match[2] === "jpg" ? "image/jpeg" : "image/png",
  };
}

/** S3 object metadata: ASCII only (S3 refuses anything else), so no prompt and no manifest text. */
function metadataOf(row: RowRecord, taskId: string): Record<string, string> {
  const metadata: Record<string, string> = {
    "task-id": taskId,
    "prompt-sha256": createHash("sha256").update(row.prompt, "utf8").digest("hex"),
    batch: row.batch,
    "row-id": row.id,
  };
  if (typeof row.params.seed === "number") metadata.seed = String(row.params.seed);
  return metadata;
}

/** The whole row record, beside each image. Any text (Chinese prompts, metadata) belongs here. */
function sidecarOf(row: RowRecord, images: ArchivedImage[], data: ArchiveJob) {
  return {
    batch: row.batch,
    id: row.id,
    line: row.line,
    prompt: row.prompt,
    params: row.params,
    metadata: row.metadata,
    taskId: data.taskId,
    taskIds: row.taskIds,
    images,
    sha256: images[0]?.sha256,
    bytes: images[0]?.bytes,
    credits: row.creditsSpent,
    uncertain: row.uncertain,
    resubmits: row.resubmits,
    submittedAt: iso(row.submittedAt),
    completedAt: iso(data.completedAt),
    archivedAt: new Date().toISOString(),
  };
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}
