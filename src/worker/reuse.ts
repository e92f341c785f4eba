import { buildSidecar, isStoreOutage, putSidecar, sidecarKey } from "../archive/index.js";
import { isArchiveStoreError } from "../archive/store-error.js";
import type { ArchiveStore } from "../archive/types.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import { type Ledger, type ResultEntry, type ResultIndex, requestHash } from "../ledger/index.js";
import type { ArchivedImage, RowRecord } from "../ledger/types.js";
import { checkSource, copyImages, ownKey, removeAll, verifyInPlace } from "./reuse-copy.js";

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
 *   object, a failed copy) ends in `false`, and the row is created as usual;
 * - no credit is spent on what the store already holds while the store is out (archiving paused,
 *   or the store refusing as an outage does: a full disk, refused credentials, no bucket): the
 *   answer is `store-out`, the row stays queued and its job comes back later; its entry is kept.
 *   A full disk and a missing bucket are the store's; whether a 403 (or every object missing) is
 *   asked of a probe of the store: one source refused by a store that takes writes (Glacier, a
 *   KMS key) never pauses archiving;
 * - a source is used only when its HEAD (size, task) and its sidecar's checksums match the entry,
 *   and it is copied only while its ETag is the HEAD's (S3); every copy's bytes are checked
 *   against the entry's sha256: hashed by the store (folder, S3 checksum) or read back (a store
 *   that answers none, like s3rver); a copy that does not match is removed, never a source;
 * - the row is moved only while this worker still holds the job (as before a create): a job whose
 *   lock lapsed leaves the row, and its reservation, to the worker that holds it now;
 * - an entry that is the row itself (the batch purged and enqueued again under its name) is not
 *   copied onto itself: its image, already at the row's key, is read and checked, and the row
 *   archived with it (its sidecar, the earlier run's, stays as it was).
 * Two rows of one request in flight at once are both created (neither is archived yet when the
 * other submits); the later archive renews the entry.
 */
export interface ReuseDeps {
  results: Pick<ResultIndex, "lookup" | "record" | "forget" | "reuseOff">;
  store: Pick<ArchiveStore, "head" | "copy" | "get" | "put" | "remove" | "locationOf">;
  ledger: Pick<Ledger, "transition" | "releaseReservation">;
  clock: Pick<Clock, "now">;
  /** The archive store's gate (archive-gate.ts `storeGateOf`): while it is shut, a reusable row waits rather than be paid for. */
  storeGate?: StoreGate;
}

/** What reuse asks of the archive pause: built by archive-gate.ts's `storeGateOf`. */
export interface StoreGate {
  /** True when archiving is open (or this call's probe of the store opened it). */
  open(signal: AbortSignal, log: Logger): Promise<boolean>;
  /** The store refused as an outage does: archiving pauses fleet-wide (alerted), as the archive stage's would. */
  refused(error: unknown, log: Logger): Promise<void>;
  /** Writes, reads back and deletes the store's probe object (the pause's own probe); throws what the store threw. */
  probe(signal: AbortSignal, log: Logger): Promise<void>;
}

interface ReuseJob {
  log: Logger;
  signal: AbortSignal;
  /** As StageJob's: false once another worker may hold the job. */
  stillOwned?: () => Promise<boolean>;
}

/**
 * Archives `row` from the result index when its request is there and its object checks out.
 * True: the row left `queued` (archived as reused, or moved on meanwhile): the submit is done.
 * False: create as usual. `lost`: the job went to another worker during the copies, the row is
 * left as it is (the caller throws JobLostError). `store-out`: the row could be reused but the
 * store is out; it stays queued (the caller comes back once the store may be back). Only a
 * failure after the copies (the ledger's) throws.
 */
export async function archiveFromIndex(
  job: ReuseJob,
  row: RowRecord,
  deps: ReuseDeps | undefined,
): Promise<boolean | "lost" | "store-out"> {
  // A row with a task already has its own images on the way (and has paid for them).
  if (!deps || row.status !== "queued" || row.taskIds.length > 0) return false;
  const hash = requestHash(row.prompt, row.params);
  if (hash === undefined) return false;
  let images: ArchivedImage[];
  let entry: ResultEntry | undefined;
  // What this run wrote at the row's own keys (copies, sidecar): removed if the row does not take them.
  const written: string[] = [];
  /** While the store is probed: a refusal then is the store's, not an object's. */
  let probing = false;
  try {
    // The batch's flag (a read) is asked only once there is something to reuse: most creates find no entry.
    const found = await deps.results.lookup(hash);
    if (!found || (await deps.results.reuseOff(row.batch))) return false;
    entry = found;
    const from = `${entry.batch}/${entry.rowId}`;
    // Archiving is paused (the store refused): its images wait for the store, not a paid create.
    if (deps.storeGate && !(await deps.storeGate.open(job.signal, job.log))) return storeOut(job, from);
    const targets = entry.images.map((source, index) => ownKey(row, source.key, index));
    const itself = entry.batch === row.batch && entry.rowId === row.id;
    // Another row's image at one of this row's keys (a row id like `x-2` beside row `x`'s second
    // image): a copy would write over the source, and a failed one remove it.
    if (!itself && entry.images.some((source) => targets.includes(source.key))) {
      job.log.info({ from }, "result index entry shares a key with this row: not reused");
      return false;
    }
    const checked = await checkSource(deps.store, entry, job.signal);
    // S3 answers a HEAD in a missing bucket with a bare 404: before the entry is dropped and the
    // row paid for, a probe says whether the store is there at all (its refusal is the catch's).
    if (checked === "object missing" && deps.storeGate) {
      probing = true;
      await deps.storeGate.probe(job.signal, job.log);
      probing = false;
    }
    const copied =
      typeof checked === "string"
        ? checked
        : itself
          ? await verifyInPlace(deps.store, entry, job.signal)
          : await copyImages(deps.store, { entry, targets, etags: checked, written }, job, row);
    if (typeof copied === "string") {
      await deps.results.forget(hash, entry);
      job.log.warn({ from, reason: copied }, "result index entry not reused: created instead");
      return false;
    }
    images = copied;
    if (!itself) {
      const sidecar = buildSidecar(row, images, {
        taskId: entry.taskId,
        completedAt: entry.archivedAt,
        archivedAt: deps.clock.now(),
        reusedFrom: {
          batch: entry.batch,
          rowId: entry.rowId,
          taskId: entry.taskId,
          key: entry.images[0]!.key,
        },
      });
      written.push(sidecarKey(row.batch, row.id));
      await putSidecar(deps.store, sidecar, { signal: job.signal });
    }
  } catch (error) {
    if (job.signal.aborted) throw error;
    const from = entry && `${entry.batch}/${entry.rowId}`;
    const refusal = isStoreOutage(error)
      ? await whoseRefusal(deps.storeGate, job, error, probing)
      : ({ of: "unknown" } as const);
    if (refusal.of === "store") {
      // Shown and probed fleet-wide, as the archive stage's outage is (a pause that fails to be set leaves the row waiting all the same).
      await deps.storeGate
        ?.refused(refusal.error, job.log)
        .catch((failed: unknown) => job.log.warn({ err: failed }, "archiving not paused"));
      return storeOut(job, from, refusal.error);
    }
    // Created instead: what this run wrote at the row's keys goes (best effort; its archive would write them anew).
    await removeAll(deps.store, written, job.signal).catch(() => undefined);
    if (refusal.of === "object" && entry) {
      // The store takes writes: the refusal is this source's (moved to Glacier, a KMS key, a
      // denied prefix). Its entry goes, so no later row tries it again; this row is created.
      await deps.results.forget(hash, entry).catch(() => undefined);
      job.log.warn(
        { err: error, from },
        "the store refused this source but takes writes: not reused, created instead",
      );
      return false;
    }
    job.log.warn({ err: error, from }, "reuse failed: created instead");
    return false;
  }
  // The lock may have lapsed during the copies and the job gone to another worker, which may be
  // creating the row (with its own reservation): the row is that worker's now. The copies stay:
  // they are at the row's keys, which that worker writes too.
  if (job.stillOwned && !(await job.stillOwned())) return "lost";
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
  if (!moved.ok) {
    // Cancelled or purged meanwhile: nothing to submit either, and the copies belong to no row.
    const status = moved.row?.status;
    if (status === undefined || status === "cancelled" || status === "failed")
      await removeAll(deps.store, written, job.signal).catch((error: unknown) =>
        job.log.warn({ err: error, keys: written }, "copies of a row cancelled during reuse not removed"),
      );
    return true;
  }
  job.log.info(
    { from, taskId: entry.taskId },
    "reused: archived as a copy of an earlier row's images, no create",
  );
  await recordResult(deps, row, images, entry.taskId, job.log);
  return true;
}

/**
 * Whose a refusal that looks like an outage is. A full disk or quota and a missing bucket are the
 * store's, as is whatever the probe itself met. A 403 may be one object's (moved to Glacier, a
 * KMS key, a denied prefix): a probe of the store tells. It is the store's when the probe is
 * refused as an outage too (with the probe's error), the object's when the probe goes through,
 * unknown when the probe fails otherwise (a 5xx, a timeout) or there is no gate to probe with.
 */
async function whoseRefusal(
  gate: StoreGate | undefined,
  job: ReuseJob,
  error: unknown,
  probed: boolean,
): Promise<{ of: "store"; error: unknown } | { of: "object" | "unknown" }> {
  if (probed || !(isArchiveStoreError(error) && error.code === "access_denied"))
    return { of: "store", error };
  if (!gate) return { of: "unknown" };
  try {
    await gate.probe(job.signal, job.log);
    return { of: "object" };
  } catch (probeError) {
    if (job.signal.aborted) throw probeError;
    return isStoreOutage(probeError) ? { of: "store", error: probeError } : ({ of: "unknown" } as const);
  }
}

function storeOut(job: ReuseJob, from: string | undefined, error?: unknown): "store-out" {
  const message =
    "the archive store is out: this request was archived before, so the row waits for the store instead of a paid create";
  // A refusal met now is news (info); a pause already set (logged and alerted once for the fleet)
  // would otherwise log a line a minute for every waiting row.
  if (error === undefined) job.log.debug({ from }, message);
  else job.log.info({ from, err: error }, message);
  return "store-out";
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
