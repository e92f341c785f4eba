import type { Readable } from "node:stream";

/**
 * Ends `body` when `signal` aborts, without an error: `destroy()` with no error emits only
 * `close`, so an abort that lands before the caller listens on the stream cannot become an
 * uncaught `error` event (a stream made with `{ signal }` would emit one). A pipeline reading the
 * body then rejects with a premature close. The listener goes when the body closes.
 */
export function destroyOnAbort<T extends Readable>(body: T, signal: AbortSignal | undefined): T {
  if (!signal) return body;
  if (signal.aborted) {
    body.destroy();
    return body;
  }
  const onAbort = () => body.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  body.once("close", () => signal.removeEventListener("abort", onAbort));
  return body;
}
