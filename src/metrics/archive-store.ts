import { performance } from "node:perf_hooks";
import { pipeline, type Readable, Transform } from "node:stream";
import type { ArchiveStore } from "../archive/types.js";
import type { WorkerMetrics } from "./registry.js";

/** "image" for image puts, "sidecar" for the row's JSON, "other" for anything else. */
export function putKind(contentType: string): "image" | "sidecar" | "other" {
  if (contentType.startsWith("image/")) return "image";
  if (contentType.startsWith("application/json")) return "sidecar";
  return "other";
}

/**
 * ArchiveStore with metrics: each put timed by kind and outcome, and the bytes of each
 * successful put counted as they stream through (nothing is buffered: the store reads a
 * counting pass-through of the body).
 *
 * The store's contract holds through the pass-through: `stream.pipeline` destroys the caller's
 * body when the store destroys what it was given, and hands a body's own error on to the store.
 */
export function instrumentStore(store: ArchiveStore, metrics: WorkerMetrics): ArchiveStore {
  return {
    ...store,
    async put(key, body, options) {
      const kind = putKind(options.contentType);
      let bytes = 0;
      const counted = pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            bytes += chunk.length;
            callback(null, chunk);
          },
        }),
        () => {
          // Errors reach the store through the pass-through; nothing to do here.
        },
      ) as Readable;
      const started = performance.now();
      let outcome = "error";
      try {
        await store.put(key, counted, options);
        outcome = "ok";
        metrics.archiveBytes.inc({ kind }, bytes);
      } catch (error) {
        counted.destroy(); // the contract: on any failure the body is destroyed (pipeline passes it on)
        throw error;
      } finally {
        metrics.archivePutDuration.observe({ kind, outcome }, (performance.now() - started) / 1000);
      }
    },
  };
}
