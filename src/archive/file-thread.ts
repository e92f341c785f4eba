import { unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { TEMP_GONE, THREAD_SOURCE } from "./file-thread-source.js";
import { ArchiveStoreError, tempGone } from "./store-error.js";

/**
 * The folder store's small writes, each done whole on a file thread. Writing a small object the
 * usual way (`fs.promises`: open, write, fsync, close for the object and its metadata, then two
 * renames and the directory's open, fsync, close) hands about a dozen requests to libuv's pool and
 * back, each a wake-up of another thread: on a busy machine those hand-offs cost more CPU than the
 * writes (issue 10's profile). Here one message carries a whole put to a thread that makes the
 * same system calls in the same order, synchronously, and one message brings the outcome back.
 * Nothing else changes: each file goes to a temporary name, is fsync'd, then renamed over its
 * target in the order given, so a crash leaves a file whole or absent, and the directory is
 * fsync'd after the renames, in the same request when asked (a streamed put's `DirectorySync`
 * sends its shared fsync as a request of its own). The event loop never blocks on the disk: a slow
 * or network file system slows the thread, not the worker's locks. Each thread has its own queue:
 * a slow fsync delays the requests given to its thread (requests go to an idle thread first),
 * never another thread's.
 */

/**
 * A file to write: bytes to `temp` (made with O_EXCL; its directory made when missing, each
 * directory made fsync'd in its parent), fsync'd, then renamed to `path` (its directory made
 * again when it went missing; a `temp` gone before the rename fails the put as `unavailable`).
 */
export interface ThreadFile {
  temp: string;
  path: string;
  bytes: Uint8Array;
}

/** What a thread answers: nothing, or the error of the call that failed, as Node reports it. */
interface Reply {
  id: number;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
}

interface Pending {
  resolve(): void;
  reject(error: unknown): void;
  /** The temporary files the request may have made: deleted when its thread is lost. */
  temps: readonly string[];
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Threads at most: each is one queue of disk calls (fsyncs wait there); four, as libuv's pool. */
const MAX_THREADS = 4;

/**
 * A small pool of file threads, started on first use. A request goes to an idle thread, or a new
 * one while fewer than `max` run, or the one with the fewest requests waiting. A thread holds the
 * process open only while it has work; one that dies fails what it held and is replaced.
 */
export class FileThreads {
  private readonly threads: Thread[] = [];
  private nextId = 0;
  private closed = false;

  /**
   * @param max threads at most. @defaultValue 4
   * @param prelude code run in each thread before its own (tests: a thread that dies).
   */
  constructor(
    private readonly max = MAX_THREADS,
    private readonly prelude = "",
  ) {}

  /**
   * Writes `files` in order (each to its temporary name, fsync'd), then renames them in order.
   * A failure before the renames leaves no temporary file; one during them leaves the files
   * renamed so far and deletes the rest. Rejects with the failing call's error (its `code` and
   * `syscall`, as `fs` gives them). The bytes are copied: the caller's buffer stays its own.
   */
  write(files: readonly ThreadFile[], options: { syncDirectory?: string } = {}): Promise<void> {
    const copies = files.map((file) => ({ ...file, bytes: new Uint8Array(file.bytes).buffer }));
    const dir = options.syncDirectory === undefined ? {} : { dir: options.syncDirectory };
    return this.send(
      { op: "write", files: copies, ...dir },
      copies.map((file) => file.bytes),
      files.map((file) => file.temp),
    );
  }

  /** fsyncs the directory `dir` (open, fsync, close on the thread). */
  syncDirectory(dir: string): Promise<void> {
    return this.send({ op: "sync", dir }, [], []);
  }

  /**
   * Stops every thread; requests still waiting are failed (as `unavailable`: a row's archive is
   * tried again). Waits at most `CLOSE_WAIT_MS`: a thread blocked in a call (an fsync on a hung
   * network mount) ends with the process, not before the rest of a shutdown.
   */
  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    const temps = threads.flatMap((thread) =>
      failAll(thread, "the folder store was closed with this write waiting"),
    );
    const stopped = Promise.all(threads.map((thread) => thread.worker.terminate()));
    // The temporary files of the failed writes go once no thread can write them any more; a
    // thread still stuck (a hung mount) may leave its own.
    const outcome = await Promise.race([
      stopped.then(() => "stopped" as const),
      sleep(CLOSE_WAIT_MS, "late" as const, { ref: false }),
    ]);
    if (outcome === "stopped") await deleteQuietly(temps);
  }

  private send(request: object, transfer: ArrayBuffer[], temps: readonly string[]): Promise<void> {
    if (this.closed) return Promise.reject(threadLost("the folder store is closed"));
    const thread = this.pick();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject, temps });
      if (thread.pending.size === 1) thread.worker.ref();
      thread.worker.postMessage({ ...request, id }, transfer);
    });
  }

  private pick(): Thread {
    const idle = this.threads.find((thread) => thread.pending.size === 0);
    if (idle) return idle;
    if (this.threads.length < this.max) return this.start();
    return this.threads.reduce((best, thread) => (thread.pending.size < best.pending.size ? thread : best));
  }

  private start(): Thread {
    const worker = new Worker(`${this.prelude}\n${THREAD_SOURCE}`, {
      eval: true,
      // Not the parent's flags: a loader (tsx in a checkout's tests) has nothing to do here.
      execArgv: [],
      // The thread keeps no JavaScript objects of note: bodies travel as transferred buffers.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    });
    const thread: Thread = { worker, pending: new Map() };
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const pending = thread.pending.get(reply.id);
      if (!pending) return;
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
      if (reply.error?.code === TEMP_GONE) pending.reject(tempGone(reply.error.path ?? "(unknown)"));
      else if (reply.error) pending.reject(fsError(reply.error));
      else pending.resolve();
    });
    const fail = (message: string) => {
      const index = this.threads.indexOf(thread);
      if (index !== -1) this.threads.splice(index, 1);
      // The thread is gone: nothing writes its temporary files any more.
      void deleteQuietly(failAll(thread, message));
    };
    worker.on("error", (error) => fail(`a folder store file thread failed: ${error.message}`));
    worker.on("exit", (code) => fail(`a folder store file thread stopped (exit code ${code})`));
    this.threads.push(thread);
    return thread;
  }
}

/** How long `close` waits for its threads to stop. */
const CLOSE_WAIT_MS = 2_000;

/**
 * A write lost with its thread (it died, or the store closed) says nothing of the disk: the put
 * fails as `unavailable`, so the archive is tried again, never failing a row. Its temporary files
 * are deleted once the thread has stopped (files it had renamed stay: a later put replaces them).
 */
function threadLost(message: string): ArchiveStoreError {
  return new ArchiveStoreError({ code: "unavailable", message });
}

/** Fails every request the thread held; returns their temporary files. */
function failAll(thread: Thread, message: string): string[] {
  const temps: string[] = [];
  for (const pending of thread.pending.values()) {
    pending.reject(threadLost(message));
    temps.push(...pending.temps);
  }
  thread.pending.clear();
  return temps;
}

/** Deletes files that may exist (a missing one, or any failure, is no error: best effort). */
async function deleteQuietly(paths: readonly string[]): Promise<void> {
  await Promise.all(paths.map((path) => unlink(path).catch(() => undefined)));
}

/** The thread's error as an `fs` error: the same message, `code`, `errno`, `syscall` and `path`. */
function fsError(reported: NonNullable<Reply["error"]>): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(reported.message);
  if (reported.code !== undefined) error.code = reported.code;
  if (reported.errno !== undefined) error.errno = reported.errno;
  if (reported.syscall !== undefined) error.syscall = reported.syscall;
  if (reported.path !== undefined) error.path = reported.path;
  return error;
}
