/** Small node:http helpers: read a bounded JSON body, write JSON, text and streamed files. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ImageFile } from "./image-file.js";

/** Create bodies are small (a 5,000-character prompt); anything bigger is not a KIE request. */
const MAX_BODY_BYTES = 1 << 20;

export type BodyResult = { ok: true; value: unknown } | { ok: false; msg: string };

export async function readJsonBody(req: IncomingMessage): Promise<BodyResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Keep draining so the client sees our answer instead of a reset; just stop storing.
    if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  if (size > MAX_BODY_BYTES) return { ok: false, msg: `request body over ${MAX_BODY_BYTES} bytes` };
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, msg: "request body is not valid JSON" };
  }
}

export function sendJson(res: ServerResponse, httpStatus: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(httpStatus, { "content-type": "application/json", "content-length": payload.length });
  res.end(payload);
}

/** A proxy-style error page: what a 502/503/504 from a load balancer looks like. */
export function sendText(res: ServerResponse, httpStatus: number): void {
  const payload = Buffer.from(`<html><body><h1>${httpStatus}</h1>upstream unavailable</body></html>`);
  res.writeHead(httpStatus, { "content-type": "text/html", "content-length": payload.length });
  res.end(payload);
}

/**
 * Streams a file with backpressure: chunks are produced as the socket drains, so a 25 MB
 * padded image holds at most a chunk or two in memory.
 */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: ImageFile): Promise<void> {
  res.writeHead(200, { "content-type": file.contentType, "content-length": file.size });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  try {
    await pipeline(Readable.from(file.chunks(), { objectMode: false, highWaterMark: 1 << 16 }), res);
  } catch {
    // The client went away mid-file; nothing to answer.
  }
}
