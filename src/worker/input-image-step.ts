/**
 * The submit stage's step for a row's local input image (image-to-image, edit): its URL from
 * InputImages (input-image.ts) before the key choice, what an upload error does to the uploading
 * key, and a fresh upload when KIE refuses a create whose upload may have expired early.
 */
import type { Clock } from "../core/clock.js";
import type { KeyRing } from "../fleet/key-ring.js";
import { PAUSE_RECHECK_MS, type PauseKind } from "../fleet/policy.js";
import { isKieError, type KieError } from "../kie/errors.js";
import type { GenerationParams } from "../kie/types.js";
import { RECENT_GATE_MS } from "./gate.js";
import { inputError } from "./input-image.js";
import type { SubmitJob } from "./jobs.js";
import type { FleetPort, InputImagePort } from "./ports.js";
import type { StageJob, StageResult } from "./stage.js";
import { handleSubmitError, type SubmitErrorDeps } from "./submit-errors.js";

/** What uploading a row's input image uses of the submit stage's ports. */
type UploadDeps = Omit<SubmitErrorDeps, "fleet" | "keyId"> & {
  inputImages?: InputImagePort | undefined;
  fleet: Pick<FleetPort, "backoff" | "pause" | "readGate">;
  keys?: KeyRing | undefined;
  clock: Pick<Clock, "sleep">;
};

/**
 * The input image URL for a row's create (none for a row without a local image), or what the
 * submit stage does instead: a retry, or the row failed for good. Called before the key choice,
 * so no slot is held meanwhile. With several keys, the upload goes with the first key whose gate
 * lets uploads go (no refused-key or operator's pause, no backoff): its errors act on that key's
 * gate and name it (a 401 pauses that key, and the row tries the next one), and when no key may
 * upload the row waits here until one may. With one key, it uploads and, when an error set a
 * fleet condition (pause, backoff), waits until uploads may go again.
 */
export async function uploadInputImage(
  params: GenerationParams,
  job: StageJob<SubmitJob>,
  deps: UploadDeps,
): Promise<{ imageUrl?: string; next?: StageResult<SubmitJob> }> {
  // A row without a local image uploads nothing: no gate read, no wait.
  if (params.image_path === undefined || params.image_sha256 === undefined) return {};
  const lanes = deps.keys?.lanes ?? [];
  if (lanes.length <= 1) {
    const fleet = lanes[0]?.fleet ?? deps.fleet;
    for (;;) {
      const input = await prepareInputImage(params, job, { ...deps, fleet }, 0);
      if (input.next !== "again") return input as { imageUrl?: string; next?: StageResult<SubmitJob> };
      await waitForUploads(fleet, deps.clock, job.signal);
    }
  }
  // Lanes whose upload came back "again" since the last wait: not tried twice in a row, so an
  // error that set nothing new never loops hot.
  const tried = new Set<number>();
  for (;;) {
    job.signal.throwIfAborted();
    const open = await openUploadLane(lanes, tried);
    if (open.lane === undefined) {
      tried.clear();
      await deps.clock.sleep(Math.min(PAUSE_RECHECK_MS, open.backoffMs ?? PAUSE_RECHECK_MS), job.signal);
      continue;
    }
    const lane = lanes[open.lane]!;
    const input = await prepareInputImage(
      params,
      job,
      { ...deps, fleet: lane.fleet, keyId: lane.id },
      open.lane,
    );
    if (input.next !== "again") return input as { imageUrl?: string; next?: StageResult<SubmitJob> };
    tried.add(open.lane);
  }
}

/**
 * The first lane (not in `skip`) whose gate lets uploads go, one gate read per lane asked; or
 * none, with the shortest backoff seen (a lane in backoff opens by itself when it ends).
 */
async function openUploadLane(
  lanes: readonly { fleet: Pick<FleetPort, "readGate" | "recentGate"> }[],
  skip: ReadonlySet<number>,
): Promise<{ lane?: number; backoffMs?: number }> {
  let backoffMs: number | undefined;
  for (const [index, { fleet }] of lanes.entries()) {
    if (skip.has(index)) continue;
    // Uploads are free: a gate seen open within the last second will do (the create's own key
    // choice and slot read theirs fresh); one round trip per image row saved while keys are open.
    const gate = await (fleet.recentGate?.(RECENT_GATE_MS) ?? fleet.readGate());
    if (gate.paused && UPLOAD_STOPPING_PAUSES.has(gate.paused.kind)) continue;
    if (gate.backoffMs > 0) {
      backoffMs = Math.min(backoffMs ?? gate.backoffMs, gate.backoffMs);
      continue;
    }
    return { lane: index };
  }
  return backoffMs === undefined ? {} : { backoffMs };
}

/** Pauses that stop uploads too: a refused key, an operator's. Uploads are free: a credit pause does not. */
const UPLOAD_STOPPING_PAUSES: ReadonlySet<PauseKind> = new Set(["bad-key", "manual"]);

/** After an upload error set a condition on the uploading key: waits until uploads may go again. */
async function waitForUploads(
  fleet: Pick<FleetPort, "readGate">,
  clock: Pick<Clock, "sleep">,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const { paused, backoffMs } = await fleet.readGate();
    if (backoffMs > 0) {
      await clock.sleep(backoffMs, signal);
      continue;
    }
    // Never at once: an error that set nothing new (a pause already there) must not loop hot.
    await clock.sleep(PAUSE_RECHECK_MS, signal);
    if (!paused || !UPLOAD_STOPPING_PAUSES.has(paused.kind)) return;
  }
}

/** The input image URL for a row's create, or what the submit stage does instead. */
async function prepareInputImage(
  params: GenerationParams,
  job: StageJob<SubmitJob>,
  deps: SubmitErrorDeps & { inputImages?: InputImagePort | undefined },
  lane: number,
): Promise<{ imageUrl?: string; next?: "again" | StageResult<SubmitJob> }> {
  const { image_path: path, image_sha256: sha256 } = params;
  if (path === undefined || sha256 === undefined) return {};
  try {
    if (!deps.inputImages) {
      throw inputError(
        false,
        "this worker has no upload client for local input images (KIE_UPLOAD_BASE_URL)",
      );
    }
    return { imageUrl: await deps.inputImages.urlFor(path, sha256, job.signal, lane) };
  } catch (error) {
    if (job.signal?.aborted || !isKieError(error)) throw error;
    const key = deps.keyId === undefined ? {} : { key: deps.keyId };
    job.log.warn({ code: error.code, path, ...key }, `input image not uploaded: ${error.message}`);
    return { next: await handleSubmitError(error, job, deps) };
  }
}

/**
 * A create KIE refused as invalid, for a row whose image_url is an upload of its local file: the
 * upload may have expired early (KIE says 24 hours in one place). Its record is dropped (this
 * worker's and the fleet's) so the caller can try once more with a fresh upload. True when it was.
 */
export async function forgetRefusedUpload(
  error: KieError,
  params: GenerationParams,
  deps: { inputImages?: InputImagePort | undefined },
  log: StageJob<SubmitJob>["log"],
): Promise<boolean> {
  const { image_path: path, image_sha256: sha256 } = params;
  const forget = deps.inputImages?.forget?.bind(deps.inputImages);
  if (error.code !== "validation" || path === undefined || sha256 === undefined || !forget) return false;
  await forget(sha256);
  log.warn(
    { code: error.code, path },
    `KIE refused the create (${error.message}): its uploaded input image may have expired; uploading it again`,
  );
  return true;
}
