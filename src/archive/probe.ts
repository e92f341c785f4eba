import { Readable } from "node:stream";
import { JSON_CONTENT_TYPE } from "./sidecar.js";
import type { ArchiveStore } from "./types.js";

/** The probe's object, at the store's root: no batch can own it (batch names never start with "."). */
const STORE_PROBE_KEY = ".kie-batch-probe.json";

/**
 * Does the store take an archive again? Writes a small object, reads its head back (the archive
 * stage heads every sidecar first), then deletes it. Throws what the store threw. The delete is
 * best effort: a bucket policy that allows PutObject but not DeleteObject archives fine, so it
 * must not keep archiving paused; `onRemoveError` hears of it.
 */
export async function probeStore(
  store: Pick<ArchiveStore, "put" | "head" | "remove">,
  options: { signal?: AbortSignal; now?: number; onRemoveError?: (error: unknown) => void } = {},
): Promise<void> {
  const { signal } = options;
  const body = `${JSON.stringify({ probe: "kie-batch", at: new Date(options.now ?? Date.now()).toISOString() })}\n`;
  await store.put(STORE_PROBE_KEY, Readable.from([Buffer.from(body)]), {
    contentType: JSON_CONTENT_TYPE,
    ...(signal ? { signal } : {}),
  });
  await store.head(STORE_PROBE_KEY, signal);
  await store.remove(STORE_PROBE_KEY, signal).catch((error: unknown) => options.onRemoveError?.(error));
}
