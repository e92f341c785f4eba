/** Shared by the simulator tests: a tiny HTTP client, a poll-until helper and image decoders. */
import { inflateSync } from "node:zlib";
import { request } from "undici";
import type { SimulatorHandle } from "../../src/simulator/index.js";

export const KEY = "test-key";

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever shape the simulator sent
  body: any;
}

export async function call(
  sim: Pick<SimulatorHandle, "url">,
  method: "GET" | "POST",
  path: string,
  options: { body?: unknown; key?: string | null } = {},
): Promise<Answer> {
  const key = options.key === undefined ? KEY : options.key;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const response = await request(`${sim.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // a non-JSON body (proxy page) stays text
  }
  return { status: response.statusCode, body };
}

export async function download(url: string): Promise<{ status: number; bytes: Buffer; type: string }> {
  const response = await request(url);
  const bytes = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, bytes, type: String(response.headers["content-type"]) };
}

/** Polls `read` (no faster than every 5 ms) until `done` holds; the simulated latency is tiny. */
export async function until<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function qwenStatus(sim: SimulatorHandle, taskId: string): Promise<Answer> {
  return call(sim, "GET", `/api/v1/qwen/record-info?taskId=${encodeURIComponent(taskId)}`);
}

export function jobsStatus(sim: SimulatorHandle, taskId: string): Promise<Answer> {
  return call(sim, "GET", `/api/v1/jobs/recordInfo?taskId=${encodeURIComponent(taskId)}`);
}

export async function submitQwen(sim: SimulatorHandle, params: Record<string, unknown>): Promise<string> {
  const answer = await call(sim, "POST", "/api/v1/qwen/generate", { body: params });
  if (answer.body.code !== 200) throw new Error(`submit failed: ${JSON.stringify(answer.body)}`);
  return answer.body.data.taskId as string;
}

/** Submits through the qwen flavour and polls until success; returns the result URL. */
export async function generate(sim: SimulatorHandle, params: Record<string, unknown>): Promise<string> {
  const taskId = await submitQwen(sim, params);
  const done = await until(
    () => qwenStatus(sim, taskId),
    (answer) => answer.body.code === 200 && answer.body.data.successFlag !== 0,
  );
  if (done.body.data.successFlag !== 1) throw new Error(`task failed: ${JSON.stringify(done.body)}`);
  return done.body.data.imageUrl as string;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A strict little PNG reader: signature, chunk CRCs, IHDR, IEND last, IDAT inflated to the right size. */
export function decodePng(bytes: Buffer): {
  width: number;
  height: number;
  pixels: Buffer;
  chunkTypes: string[];
} {
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error("not a PNG signature");
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let width = 0;
  let height = 0;
  let offset = 8;
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString("latin1", offset + 4, offset + 8);
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    const crc = bytes.readUInt32BE(offset + 8 + length);
    if (crc32(bytes.subarray(offset + 4, offset + 8 + length)) !== crc) throw new Error(`bad CRC in ${type}`);
    chunkTypes.push(type);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 2) throw new Error("expected 8-bit RGB");
    }
    if (type === "IDAT") idat.push(data);
    offset += 12 + length;
  }
  if (chunkTypes[0] !== "IHDR" || chunkTypes.at(-1) !== "IEND")
    throw new Error(`bad chunk order ${chunkTypes}`);
  const pixels = inflateSync(Buffer.concat(idat));
  if (pixels.length !== height * (1 + width * 3)) throw new Error("IDAT does not hold width x height pixels");
  return { width, height, pixels, chunkTypes };
}

/** Walks JPEG marker segments from SOI to EOI; returns the marker bytes seen. */
export function jpegMarkers(bytes: Buffer): number[] {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error("no SOI");
  if (bytes.at(-2) !== 0xff || bytes.at(-1) !== 0xd9) throw new Error("no EOI");
  const markers: number[] = [];
  let offset = 2;
  for (;;) {
    if (bytes[offset] !== 0xff) throw new Error(`expected a marker at ${offset}`);
    const marker = bytes[offset + 1]!;
    markers.push(marker);
    offset += 4 + bytes.readUInt16BE(offset + 2) - 2;
    if (marker === 0xda) return markers; // entropy data follows the scan header up to EOI
  }
}

/** Independent of the simulator's zlib.crc32 use: a table CRC-32 (ISO 3309). */
function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
