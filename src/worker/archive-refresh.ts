import { PAUSE_POLICY } from "../fleet/policy.js";
import { isKieError } from "../kie/errors.js";
import type { KieApi } from "../kie/types.js";
import type { FleetPort } from "./ports.js";

/**
 * The archive stage's fresh result URLs (KIE's download-url), asked with the task's own key once a
 * status-call slot is free, and what a refusal of that call means for the try (archive.ts).
 */

/**
 * Download failures that a fresh URL may cure: an expired result URL answers 403/404/410 by KIE's
 * docs, but a CDN may answer another 4xx or a page of its own. Not a refused host, a size or a URL
 * that does not parse: those a fresh URL of the same file would meet again.
 */
export const REFRESHED_ON: ReadonlySet<string> = new Set(["expired", "http_error", "not_image"]);

/**
 * Tries of a row whose file host refuses the image through a fresh URL too (a CDN's rate rule, a
 * file not there yet), counted apart from other errors' tries: ~25 min of backoff, then it fails.
 */
export const REFUSED_TRIES = 12;

/** What the refresh uses of a key's fleet state: a status-call slot, and the bad-key pause. */
export type RefreshFleet = Pick<FleetPort, "pollSlot"> & Partial<Pick<FleetPort, "pause">>;

/** A download-url call that KIE did not answer about the file: retryable, or a fleet condition. */
export function refreshUnanswered(error: unknown): boolean {
  return isKieError(error) && (error.retryable || error.fleetEffect !== undefined);
}

/**
 * A fresh URL for `url` from KIE's download-url, with the task's key, once a status-call slot is
 * free. A key KIE refuses (401) pauses that key's lane as a refused status call does, so the cause
 * is named in `status` and alerts instead of only in the archive's retries.
 */
export async function refreshedUrl(
  deps: { kie: Pick<KieApi, "refreshDownloadUrl">; fleet?: RefreshFleet },
  lane: { kie?: Pick<KieApi, "refreshDownloadUrl">; fleet?: RefreshFleet },
  url: string,
  signal: AbortSignal,
): Promise<string> {
  const fleet = lane.fleet ?? deps.fleet;
  await fleet?.pollSlot(signal);
  try {
    return await (lane.kie ?? deps.kie).refreshDownloadUrl(url, signal);
  } catch (error) {
    // The pause failing (a Redis blip) must not replace KIE's answer: that answer keeps the try.
    if (isKieError(error) && error.fleetEffect === "bad-key")
      await fleet?.pause?.("bad-key", PAUSE_POLICY["bad-key"].reason()).catch(() => false);
    throw error;
  }
}
