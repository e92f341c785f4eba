/**
 * Pictures drawn on a thread of their own. Drawing one takes tens of ms of CPU (images.ts); done
 * on the server's thread, creates that arrived meanwhile would wait, and the rate window would
 * stamp them late and closer together than they came (KIE counts creates as they come, whatever
 * else it serves). The thread starts on first use and holds the process open only while it draws;
 * one that dies fails what it held (the file request answers 500) and the next draw starts another.
 */
import { Worker } from "node:worker_threads";
import { type EncodedImage, type ImageSpec, imageKey } from "./images.js";

/** Encoded heads and tails of recent pictures: a download is drawn once, not per request. */
const KEPT = 64;

interface Pending {
  resolve(parts: EncodedImage): void;
  reject(error: Error): void;
}

interface Reply {
  id: number;
  head?: Uint8Array;
  tail?: Uint8Array;
  error?: string;
}

/**
 * The thread imports images.ts itself (no copy of the drawing code as a string). A checkout's
 * tests and benchmarks run the TypeScript sources: there the thread registers tsx first.
 */
function threadSource(): string {
  const images = new URL("./images.js", import.meta.url);
  const typescript = import.meta.url.endsWith(".ts");
  if (typescript) images.pathname = images.pathname.replace(/\.js$/, ".ts");
  const tsx = typescript ? import.meta.resolve("tsx/esm/api") : "";
  return `
const { parentPort } = require("node:worker_threads");
const ready = (async () => {
  const tsx = ${JSON.stringify(tsx)};
  if (tsx) (await import(tsx)).register();
  return import(${JSON.stringify(images.href)});
})();
parentPort.on("message", async ({ id, spec }) => {
  try {
    const { encodeImage } = await ready;
    const parts = encodeImage(spec);
    // Copies of their own: a small Buffer may share Node's pool, which must not be transferred.
    const head = new Uint8Array(parts.head);
    const tail = new Uint8Array(parts.tail);
    parentPort.postMessage({ id, head, tail }, [head.buffer, tail.buffer]);
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.stack || error) });
  }
});
`;
}

export class Drawing {
  private readonly drawn = new Map<string, Promise<EncodedImage>>();
  private readonly pending = new Map<number, Pending>();
  private worker: Worker | undefined;
  private nextId = 0;
  private closed = false;

  /** @param prelude code run in the thread before its own (tests: a thread that is slow or dies). */
  constructor(private readonly prelude = "") {}

  /** The encoded picture for `spec`, drawn on the thread unless drawn lately. */
  draw(spec: ImageSpec): Promise<EncodedImage> {
    const key = imageKey(spec);
    const hit = this.drawn.get(key);
    if (hit) return hit;
    const drawing = this.send(spec);
    // A failed draw is not kept: the next request tries again.
    drawing.catch(() => {
      if (this.drawn.get(key) === drawing) this.drawn.delete(key);
    });
    if (this.drawn.size >= KEPT) this.drawn.delete(this.drawn.keys().next().value!);
    this.drawn.set(key, drawing);
    return drawing;
  }

  /** Stops the thread; draws still waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll("the simulator was closed while a picture was drawn");
    await worker?.terminate();
  }

  private send(spec: ImageSpec): Promise<EncodedImage> {
    if (this.closed) return Promise.reject(new Error("the simulator is closed"));
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<EncodedImage>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, spec });
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(`${this.prelude}\n${threadSource()}`, {
      eval: true,
      // Not the parent's flags: tsx, where needed, is registered by the thread itself.
      execArgv: [],
    });
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.error !== undefined) pending.reject(new Error(`drawing a picture failed: ${reply.error}`));
      else pending.resolve({ head: toBuffer(reply.head!), tail: toBuffer(reply.tail!) });
    });
    const lost = (message: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(message);
    };
    worker.on("error", (error) => lost(`the simulator's drawing thread failed: ${error.message}`));
    worker.on("exit", (code) => lost(`the simulator's drawing thread stopped (exit code ${code})`));
    this.worker = worker;
    return worker;
  }

  private failAll(message: string): void {
    for (const pending of this.pending.values()) pending.reject(new Error(message));
    this.pending.clear();
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
