/**
 * The input image of an image-to-image or edit create: fetched (or found among this simulator's
 * uploads) before the task is made, so a create whose `image_url` does not answer is refused
 * with 422, and a task remembers the sha256 of what it got: its output is drawn from it, so a
 * test can tell that the input reached the model.
 */
import { createHash } from "node:crypto";
import { MARKET_MODELS } from "../kie/types.js";
import type { UploadStore } from "./uploads.js";

const IMAGE_MARKET_MODELS: ReadonlySet<string> = new Set([
  MARKET_MODELS["image-to-image"],
  MARKET_MODELS.edit,
]);
const FETCH_TIMEOUT_MS = 10_000;

export type InputFetch = { ok: true; sha256: string } | { ok: false; msg: string } | undefined;

/** The input image of a jobs create body, or undefined when it names none (validation comes later). */
export async function fetchInputImage(
  body: unknown,
  uploads: UploadStore,
  maxBytes: number,
): Promise<InputFetch> {
  const envelope = body as { model?: unknown; input?: { image_url?: unknown } } | null;
  const url = envelope?.input?.image_url;
  if (typeof envelope?.model !== "string" || !IMAGE_MARKET_MODELS.has(envelope.model)) return undefined;
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return undefined;
  const uploaded = uploads.byUrl(url);
  if (uploaded) return { ok: true, sha256: uploaded.sha256 };
  try {
    const response = await fetch(url, { redirect: "error", signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!response.ok) {
      await response.body?.cancel();
      return { ok: false, msg: `image_url could not be fetched (HTTP ${response.status})` };
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > maxBytes) return { ok: false, msg: `image_url is larger than ${maxBytes} bytes` };
    return { ok: true, sha256: createHash("sha256").update(bytes).digest("hex") };
  } catch {
    return { ok: false, msg: "image_url could not be fetched" };
  }
}
