import { createHash } from "node:crypto";
import { archivedImages, buildSidecar, putSidecar, sidecarKey } from "../archive/index.js";
import type { ArchiveStore } from "../archive/types.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import { type Ledger, type ResultEntry, type ResultIndex, requestHash } from "../ledger/index.js";
import type { ArchivedImage, RowRecord } from "../ledger/types.js";

/**
 * Reuse across batches: a row that asks for exactly what an earlier row got (same model, prompt,
 * parameters and seed: ledger/request-hash.ts) is archived by copying that row's images inside the
 * store, without a create and at 0 credits. The submit stage asks `archiveFromIndex` once, before
 * it reserves credits or takes a rate slot; the archive stage calls `recordResult` after each
 * archive.
 *
 * Invariants kept here:
 * - no row is paid twice and the budget is never exceeded: a reused row reserves nothing, and a
 *   reservation it held (a woken parked row) is released before the row leaves `queued`;
 * - no row is lost: anything that goes wrong before the row is moved (a missing or changed
 *   object, a failed copy, the store down) ends in `false`, and the row is created as usual;
 * - a source is used only when its HEAD (size, task) and its sidecar's checksums match the entry,
 *   and a copy whose bytes the store could hash is checked against the entry's sha256.
 * Two rows of one request in flight at once are both created (neither is archived yet when the
 * other submits); the later archive renews the entry.
 */
export interface ReuseDeps {
  results: Pick<ResultIndex, "lookup" | "record" | "forget" | "reuseOff">;
  store: Pick<ArchiveStore, "head" | "copy" | "put" | "remove" | "locationOf">;
  ledger: Pick<Ledger, "transition" | "releaseReservation">;
  clock: Pick<Clock, "now">;
}

interface ReuseJob {
  log: Logger;
  signal: AbortSignal;
}

/** Why an entry was not used (logged; the row is created as usual). */
type Refusal = "object missing" | "object changed" | "checksum mismatch";

/**
 * Archives `row` from the result index when its request is there and its object checks out.
 * True: the row left `queued` (archived as reused, or moved on meanwhile): the submit is done.
 * False: create as usual. Only a failure after the copies (the ledger's) throws.
 */
export async function archiveFromIndex(
  job: ReuseJob,
  row: RowRecord,
  deps: ReuseDeps | undefined,
): Promise<boolean> {
  // A row with a task already has its own images on the way (and has paid for them).
  if (!deps || row.status !== "queued" || row.taskIds.length > 0) return false;
  const hash = requestHash(row.prompt, row.params);
  if (hash === undefined) return false;
  let images: ArchivedImage[];
  let entry: ResultEntry | undefined;
  try {
    const [found, off] = await Promise.all([deps.results.lookup(hash), deps.results.reuseOff(row.batch)]);
    if (!found || off) return false;
    entry = found;
    const refusal = await checkSource(deps, entry, job.signal);
    if (refusal) {
      await deps.results.forget(hash, entry);
      job.log.info(
        { from: `${entry.batch}/${entry.rowId}`, reason: refusal },
        "result index entry not reused",
      );
      return false;
    }
    const copied = await copyImages(deps, row, entry, job.signal);
    if (typeof copied === "string") {
      await deps.results.forget(hash, entry);
      job.log.warn(
        { from: `${entry.batch}/${entry.rowId}`, reason: copied },
        "reused copy failed its checksum: created instead",
      );
      return false;
    }
    images = copied;
    const sidecar = buildSidecar(row, images, {
      taskId: entry.taskId,
      completedAt: entry.archivedAt,
      archivedAt: deps.clock.now(),
      reusedFrom: { batch: entry.batch, rowId: entry.rowId, taskId: entry.taskId, key: entry.images[0]!.key },
    });
    await putSidecar(deps.store, sidecar, { signal: job.signal });
  } catch (error) {
    if (job.signal.aborted) throw error;
    job.log.warn(
      { err: error, from: entry && `${entry.batch}/${entry.rowId}` },
      "reuse failed: created instead",
    );
    return false;
  }
  // The row reserves nothing from here on: what it holds (a woken parked row) goes back first, so
  // a crash between the two leaves a queued row without a reservation, which reserves anew.
  if (row.creditsReserved > 0) await deps.ledger.releaseReservation(row.batch, row.id);
  const from = `${entry.batch}/${entry.rowId}`;
  const moved = await deps.ledger.transition(row.batch, row.id, {
    from: ["queued"],
    to: "archived",
    set: { images, archivedAt: deps.clock.now(), reusedFrom: from, error: null },
    incr: { reused: 1 },
  });
  if (!moved.ok) return true; // cancelled or purged meanwhile: nothing to submit either
  job.log.info(
    { from, taskId: entry.taskId },
    "reused: archived as a copy of an earlier row's images, no create",
  );
  await recordResult(deps, row, images, entry.taskId, job.log);
  return true;
}

/**
 * Writes the index entry of an archived row (a row without a seed has none). Its own command,
 * after the archive transition: a failure is logged and costs only a future reuse.
 */
export async function recordResult(
  deps: Pick<ReuseDeps, "results" | "clock"> | undefined,
  row: Pick<RowRecord, "batch" | "id" | "prompt" | "params">,
  images: readonly ArchivedImage[],
  taskId: string,
  log: Logger,
): Promise<void> {
  if (!deps) return;
  const hash = requestHash(row.prompt, row.params);
  if (hash === undefined || images.length === 0) return;
  try {
    await deps.results.record(hash, {
      images: images.map(({ key, bytes, sha256, contentType }) => ({ key, bytes, sha256, contentType })),
      taskId,
      batch: row.batch,
      rowId: row.id,
      archivedAt: deps.clock.now(),
    });
  } catch (error) {
    log.warn({ err: error }, "result index entry not written (a later row of this request will be created)");
  }
}

/** Each image's HEAD (size, task) and the source sidecar's checksums against the entry. */
async function checkSource(
  deps: ReuseDeps,
  entry: ResultEntry,
  signal: AbortSignal,
): Promise<Refusal | undefined> {
  const key = sidecarKey(entry.batch, entry.rowId);
  const [sidecarHead, ...heads] = await Promise.all([
    deps.store.head(key, signal),
    ...entry.images.map((image) => deps.store.head(image.key, signal)),
  ]);
  const listed = archivedImages(sidecarHead, key, entry.taskId, deps.store);
  for (const [i, image] of entry.images.entries()) {
    const head = heads[i];
    if (!head) return "object missing";
    if (head.size !== image.bytes || head.metadata["task-id"] !== entry.taskId) return "object changed";
    const inSidecar = listed?.find((item) => item.key === image.key);
    if (!inSidecar || inSidecar.sha256 !== image.sha256 || inSidecar.bytes !== image.bytes)
      return "checksum mismatch";
  }
  return undefined;
}

/** Copies the entry's images to the row's own keys; a copy whose bytes do not match is removed. */
async function copyImages(
  deps: ReuseDeps,
  row: RowRecord,
  entry: ResultEntry,
  signal: AbortSignal,
): Promise<ArchivedImage[] | Refusal> {
  const images: ArchivedImage[] = [];
  for (const [index, source] of entry.images.entries()) {
    const ext = source.key.slice(source.key.lastIndexOf(".") + 1);
    const key = `${row.batch}/${index === 0 ? row.id : `${row.id}-${index + 1}`}.${ext}`;
    const copied = await deps.store.copy(source.key, key, {
      contentType: source.contentType,
      metadata: metadataOf(row, entry),
      signal,
    });
    const wrongHash = copied.sha256 !== undefined && copied.sha256 !== source.sha256;
    const wrongSize = copied.bytes !== undefined && copied.bytes !== source.bytes;
    if (wrongHash || wrongSize) {
      for (const done of [...images.map((image) => image.key), key]) await deps.store.remove(done, signal);
      return "checksum mismatch";
    }
    images.push({
      key,
      location: deps.store.locationOf(key),
      bytes: source.bytes,
      sha256: source.sha256,
      contentType: source.contentType,
    });
  }
  return images;
}

/** As the archive stage's (ASCII only), with the task that made the bytes and the row they came from. */
function metadataOf(row: RowRecord, entry: ResultEntry): Record<string, string> {
  const metadata: Record<string, string> = {
    "task-id": entry.taskId,
    "prompt-sha256": createHash("sha256").update(row.prompt, "utf8").digest("hex"),
    batch: row.batch,
    "row-id": row.id,
    "reused-from": `${entry.batch}/${entry.rowId}`,
  };
  if (typeof row.params.seed === "number") metadata.seed = String(row.params.seed);
  return metadata;
}
