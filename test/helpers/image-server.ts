import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";

/** What a path answers. */
export interface ImageRoute {
  /** @defaultValue 200, or 302 with `redirectTo` */
  status?: number;
  headers?: Record<string, string>;
  /** A fixed body, or a factory called per request for a fresh stream. */
  body?: Buffer | string | (() => Readable);
  /** Answer with a redirect to this Location (absolute or relative). */
  redirectTo?: string;
  /** Cut the connection after sending this many body bytes. */
  cutAfterBytes?: number;
  /** Never answer (to exercise header timeouts); the socket stays open until close(). */
  hang?: boolean;
}

export interface ImageServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** `127.0.0.1:<port>`, the form an allow-list entry takes. */
  host: string;
  port: number;
  url(path: string): string;
  route(path: string, route: ImageRoute): void;
  /** Every request received, in order (path with query). */
  readonly requests: string[];
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 answering routes; unknown paths get 404. */
export async function startImageServer(routes: Record<string, ImageRoute> = {}): Promise<ImageServer> {
  const table = new Map(Object.entries(routes));
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/";
    requests.push(path);
    const route = table.get(path.split("?")[0] ?? "/");
    if (route === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    if (route.hang) return;
    if (route.redirectTo !== undefined) {
      res.writeHead(route.status ?? 302, { location: route.redirectTo, ...route.headers }).end();
      return;
    }
    res.writeHead(route.status ?? 200, { "content-type": "application/octet-stream", ...route.headers });
    const body = route.body ?? "";
    const stream = typeof body === "function" ? body() : Readable.from([Buffer.from(body)]);
    let sent = 0;
    stream.on("data", (chunk: Buffer) => {
      if (route.cutAfterBytes !== undefined && sent + chunk.length > route.cutAfterBytes) {
        // Cut the connection once the partial bytes have left (the write's callback).
        res.write(chunk.subarray(0, route.cutAfterBytes - sent), () => res.socket?.destroy());
        stream.destroy();
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) {
        stream.pause();
        res.once("drain", () => stream.resume());
      }
    });
    stream.on("end", () => res.end());
    stream.on("error", () => res.socket?.destroy());
    res.on("close", () => stream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    host: `127.0.0.1:${port}`,
    port,
    url: (path) => `${origin}${path}`,
    route: (path, route) => {
      table.set(path, route);
    },
    requests,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Signature + IHDR chunk + the private chunk's header + IEND chunk. */
const PNG_OVERHEAD = 8 + 25 + 12 + 12;
const BLOCK = 64 * 1024;

function chunkHeader(length: number, type: string): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(length, 0);
  header.write(type, 4, "latin1");
  return header;
}

function wholeChunk(type: string, data: Buffer): Buffer {
  const typeAndData = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData), 0);
  return Buffer.concat([chunkHeader(data.length, type).subarray(0, 4), typeAndData, crc]);
}

/**
 * A well-formed PNG of exactly `totalBytes` (>= PNG_OVERHEAD), generated on the fly in 64 KiB
 * pieces: signature, a 1x1 IHDR, one big private ancillary chunk `kiEb` of pseudo-random bytes
 * (deterministic for a `seed`), IEND. Never more than one piece in memory.
 */
export function pngStream(totalBytes: number, seed = 1): Readable {
  if (totalBytes < PNG_OVERHEAD) throw new Error(`A PNG needs at least ${PNG_OVERHEAD} bytes`);
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
  const payload = totalBytes - PNG_OVERHEAD;
  const base = Buffer.alloc(BLOCK);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < BLOCK; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    base.writeUInt32LE(x >>> 0, i);
  }
  let crc = crc32(Buffer.from("kiEb", "latin1"));
  let produced = 0;
  let block = 0;
  let stage: "head" | "payload" | "tail" | "done" = "head";
  return new Readable({
    read() {
      if (stage === "head") {
        stage = "payload";
        this.push(Buffer.concat([PNG_SIGNATURE, wholeChunk("IHDR", ihdr), chunkHeader(payload, "kiEb")]));
        return;
      }
      if (stage === "payload" && produced < payload) {
        const size = Math.min(BLOCK, payload - produced);
        const piece = Buffer.from(base.subarray(0, size));
        if (size >= 4) piece.writeUInt32LE(block, 0);
        block += 1;
        produced += size;
        crc = crc32(piece, crc);
        this.push(piece);
        return;
      }
      if (stage !== "done") {
        stage = "done";
        const crcBytes = Buffer.alloc(4);
        crcBytes.writeUInt32BE(crc, 0);
        this.push(Buffer.concat([crcBytes, wholeChunk("IEND", Buffer.alloc(0))]));
        return;
      }
      this.push(null);
    },
  });
}

/** The whole PNG of `pngStream(totalBytes, seed)` in memory: for small test images only. */
export async function pngBytes(totalBytes: number, seed = 1): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of pngStream(totalBytes, seed)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** A minimal JPEG-looking body (SOI + APP0 marker + filler + EOI); only the magic bytes matter. */
export function jpegBytes(totalBytes = 1024): Buffer {
  const body = Buffer.alloc(Math.max(totalBytes, 8), 0x41);
  Buffer.from([0xff, 0xd8, 0xff, 0xe0]).copy(body, 0);
  body[body.length - 2] = 0xff;
  body[body.length - 1] = 0xd9;
  return body;
}

/** sha256 (hex) and length of everything a stream yields. */
export async function digestOf(
  stream: Readable | AsyncIterable<Uint8Array>,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Uint8Array);
    bytes += (chunk as Uint8Array).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}
