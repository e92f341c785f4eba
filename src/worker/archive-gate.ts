import { mebibytes, probeStore } from "../archive/probe.js";
import { isArchiveStoreError } from "../archive/store-error.js";
import type { ArchiveStore } from "../archive/types.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { ArchivePausePort } from "../fleet/archive-pause.js";
import { PAUSE_POLICY, PAUSE_RECHECK_MS } from "../fleet/policy.js";
import type { WorkerSettings } from "./ports.js";
import type { StoreGate } from "./reuse.js";
import { errorMessage } from "./stage.js";

/** What the archive gate uses: the deployment's archive pause, the store it probes, a clock. */
export interface ArchiveGateDeps {
  storePause: ArchivePausePort;
  store: Pick<ArchiveStore, "put" | "head" | "remove" | "freeBytes" | "putMultipart">;
  clock: Pick<Clock, "now" | "sleep">;
  settings: Pick<WorkerSettings, "storeProbeMs" | "storeMinFreeBytes">;
}

/**
 * Waits while archiving is paused fleet-wide (the store refuses). When the pause's probe is due,
 * exactly one waiter in the fleet writes a small object to the store and lifts the pause if it
 * answers. The job stays active while it waits (its lock is renewed, as at the submit gate): a
 * long outage holds the stage's few slots and nothing else, its row waits in `archiving`, no job
 * churns through delayed, none fails, and no Redis call is made per waiting row.
 */
export async function waitForStore(deps: ArchiveGateDeps, signal: AbortSignal, log: Logger): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    if (await storeOpen(deps, signal, log)) return;
    await deps.clock.sleep(PAUSE_RECHECK_MS, signal);
  }
}

/**
 * One look at the archive pause: true when archiving is not paused, or this call's probe lifted
 * it. When the pause's probe is due (Redis's clock decides), one caller in the fleet wins it,
 * writes a small object to the store and lifts the pause if the store answers.
 */
async function storeOpen(
  deps: Pick<ArchiveGateDeps, "storePause" | "store"> & { clock: Pick<Clock, "now"> },
  signal: AbortSignal,
  log: Logger,
): Promise<boolean> {
  const pause = await deps.storePause.get();
  if (!pause) return true;
  if (pause.nextProbeAt === undefined || !(await deps.storePause.claimProbe())) return false;
  const policy = PAUSE_POLICY[pause.kind];
  try {
    await probe(deps, signal, log, { minFreeBytes: pause.minFreeBytes, multipart: pause.probeMultipart });
    await deps.storePause.resume(pause.kind);
    log.info(policy.probed.lifted);
  } catch (error) {
    if (signal.aborted) throw error;
    log.warn({ err: error }, policy.probed.held);
    return false;
  }
  return (await deps.storePause.get()) === null;
}

/** Writes, reads back and deletes the store's probe object; throws what the store threw. */
async function probe(
  deps: Pick<ArchiveGateDeps, "store"> & { clock: Pick<Clock, "now"> },
  signal: AbortSignal,
  log: Logger,
  asks: { minFreeBytes?: number | undefined; multipart?: boolean | undefined } = {},
): Promise<void> {
  // Only a full disk's pause asks for free space, and only a checksum refusal's writes through a
  // multipart upload too (the pause keeps both: pauseArchiving): a refused credential once fixed
  // lifts at once, a store with no multipart at all (its images all fit one put) still resumes,
  // and reuse's own probe (is a missing source the store's fault?) asks neither.
  const { minFreeBytes, multipart } = asks;
  await probeStore(deps.store, {
    signal,
    now: deps.clock.now(),
    ...(minFreeBytes === undefined ? {} : { minFreeBytes }),
    ...(multipart === true ? { multipart } : {}),
    onRemoveError: (error) => log.warn({ err: error }, "store probe: the probe object was not deleted"),
    onMultipartError: (error) =>
      log.warn(
        { err: error },
        "store probe: a multipart upload failed (an image over the part size will too)",
      ),
  });
}

/**
 * The gate as reuse sees it (reuse.ts): a row that would copy from a store that is out waits; an
 * outage its copy meets pauses archiving (and alerts) as the archive stage's would; its probe may
 * lift the pause, so rows that only reuse still move once the store is back.
 */
export function storeGateOf(deps: Omit<ArchiveGateDeps, "clock"> & { clock: Pick<Clock, "now"> }): StoreGate {
  return {
    open: (signal, log) => storeOpen(deps, signal, log),
    refused: (error, log) => pauseArchiving(deps, error, log),
    probe: (signal, log) => probe(deps, signal, log),
  };
}

/**
 * Pauses archiving fleet-wide for a store outage (`isStoreOutage(error)`). Exactly one caller
 * starts the pause and logs it at error (its alert comes from the pause watcher); the first probe
 * is one interval away, so a store being fixed gets a minute before anyone asks again.
 */
export async function pauseArchiving(
  deps: Pick<ArchiveGateDeps, "storePause" | "settings" | "store">,
  error: unknown,
  log: Logger,
): Promise<void> {
  const policy = PAUSE_POLICY["store-unavailable"];
  const every = deps.settings.storeProbeMs ?? policy.probeEveryMs;
  const floor = deps.settings.storeMinFreeBytes ?? 0;
  // A full disk of a store that tells its free space: the pause keeps the floor its probe asks for
  // (a field of the pause, written on one already in force too), and its reason says so.
  const fullDisk =
    floor > 0 &&
    deps.store.freeBytes !== undefined &&
    isArchiveStoreError(error) &&
    error.code === "no_space";
  const note = fullDisk
    ? `; a full disk: the store probe waits for KIE_ARCHIVE_MIN_FREE free (${mebibytes(floor)})`
    : "";
  // A store refusing the SDK's checksums may take a small put and refuse a multipart upload's:
  // its probe writes both ways, or it would lift at once and the next large image pause again.
  const checksums = isArchiveStoreError(error) && error.code === "checksum_refused";
  const started = await deps.storePause.pause(
    "store-unavailable",
    policy.reason(errorMessage(error)) + note,
    {
      probeAfterMs: every,
      probeEveryMs: every,
      ...(fullDisk ? { minFreeBytes: floor } : {}),
      ...(checksums ? { probeMultipart: true } : {}),
    },
  );
  if (started) log.error({ err: error }, policy.started);
  else log.info({ err: error }, "archive store refused: archiving is paused; the row waits");
}
