import { Readable } from "node:stream";

/**
 * A body that ends within `limit` bytes, read whole; a longer one is handed back as a stream
 * of the bytes read so far followed by the rest, read from where this stopped. The folder store
 * writes a small body (a sidecar, most images) as one buffer, without the stream machinery a
 * file stream costs per object. An abort destroys the body with the signal's reason, as a
 * pipeline given the signal does; the body's own error is thrown unchanged.
 */
export async function readSmall(
  body: Readable,
  limit: number,
  signal?: AbortSignal,
): Promise<Buffer | Readable> {
  signal?.throwIfAborted();
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let size = 0;
  const onAbort = () => body.destroy(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return Buffer.concat(chunks, size);
      const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) return Readable.from(rest(chunks, iterator), { objectMode: false });
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** The chunks already read, then the rest of the body; the stream's end or destruction ends the body too. */
async function* rest(
  chunks: Buffer[],
  iterator: AsyncIterator<Buffer | string>,
): AsyncGenerator<Buffer | string> {
  yield* chunks.splice(0);
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Destroyed early (a failed write, an abort): the body's iterator destroys the body.
    await iterator.return?.();
  }
}
