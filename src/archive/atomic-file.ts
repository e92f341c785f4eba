import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { access, type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname, relative } from "node:path";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { tempGone } from "./store-error.js";

/**
 * The folder store's file writes. Each file goes to a temporary name (in the process's own folder,
 * `temp-folder.ts`), is fsync'd and only then renamed over its target, so nothing torn is ever
 * seen under a final name;
 * the rename is made durable by an fsync of the directory (`DirectorySync`), which one call may
 * share with every other rename made in that directory before it started.
 */

/** A file written and fsync'd under a temporary name, waiting to be renamed into place. */
export interface TempFile {
  readonly temp: string;
  readonly path: string;
}

/** Streams `body` (through `through`, when given) to the temporary file `temp` for `path`, fsync'd. */
export async function writeTempStream(
  dirs: KnownDirectories,
  { temp, path }: TempFile,
  body: Readable,
  signal?: AbortSignal,
  through?: Transform,
): Promise<TempFile> {
  let handle: FileHandle;
  try {
    signal?.throwIfAborted();
    handle = await dirs.within(dirname(temp), () => open(temp, "wx"));
  } catch (error) {
    body.destroy();
    throw error;
  }
  // `flush`: fsync before close, so the rename never publishes data still in the page cache.
  const file = createWriteStream("", { fd: handle, flush: true });
  try {
    if (through) await pipeline(body, through, file, signal ? { signal } : {});
    else await pipeline(body, file, signal ? { signal } : {});
    return { temp, path };
  } catch (error) {
    // A body that fails at once can reject the pipeline while the file is still being opened:
    // wait for the stream to close, or the open would create the file after the unlink.
    if (!file.closed) await once(file, "close").catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/** Writes `bytes` to the temporary file `temp` for `path`, fsync'd: no stream for a small buffer. */
export async function writeTempBuffer(
  dirs: KnownDirectories,
  { temp, path }: TempFile,
  bytes: Buffer,
  signal?: AbortSignal,
): Promise<TempFile> {
  signal?.throwIfAborted();
  const handle = await dirs.within(dirname(temp), () => open(temp, "wx"));
  try {
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    signal?.throwIfAborted();
    return { temp, path };
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/**
 * Renames each temporary file over its target, in order (a target directory removed meanwhile is
 * made again); the ones left over are deleted on failure. A temporary file that went meanwhile
 * fails the put as `unavailable` (`tempGone`).
 */
export async function publish(dirs: KnownDirectories, files: readonly TempFile[]): Promise<void> {
  let done = 0;
  try {
    for (const file of files) {
      await renameInto(dirs, file);
      done++;
    }
  } catch (error) {
    await discard(files.slice(done));
    throw error;
  }
}

/**
 * Renames a temporary file over its target (whose folder the caller made). ENOENT: the temporary
 * file went (`tempGone`), or else the target's folder went behind the store's back (made again).
 */
async function renameInto(dirs: KnownDirectories, file: TempFile): Promise<void> {
  try {
    await rename(file.temp, file.path);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const there = await access(file.temp).then(
    () => true,
    () => false,
  );
  if (!there) throw tempGone(file.temp);
  await dirs.within(dirname(file.path), () => rename(file.temp, file.path));
}

/** Deletes temporary files that will not be published (a missing one is no error). */
export async function discard(files: readonly (TempFile | undefined)[]): Promise<void> {
  await Promise.all(files.map((file) => (file ? unlink(file.temp).catch(() => {}) : undefined)));
}

/**
 * Directories this store made or found, so a put asks `mkdir` only for a directory it has not
 * seen; a directory deleted behind its back (a purge) is made again when a write meets ENOENT.
 * The first time it meets a directory (made now or found), its entry is fsync'd in its parent,
 * and so is each level it made above it, deepest first: a new batch folder's entry is durable
 * before any file in it counts as stored. Put that meet the directory meanwhile wait for those
 * fsyncs; a failed one is tried again by the next put (nothing is known until its fsyncs are
 * done), and a worker started after a crash fsyncs each directory's entry again on first sight.
 * A parent outside `root` that this process may not open (a drop-box folder without the read
 * bit) is passed over: its entry is the operator's folder, not the store's.
 */
export class KnownDirectories {
  private readonly known = new Set<string>();
  private readonly making = new Map<string, Promise<void>>();

  constructor(
    private readonly root: string,
    private readonly syncDirectory: (dir: string) => Promise<void>,
  ) {}

  /**
   * Runs `create` (an open that creates a file in `dir`: safe to run twice) once `dir` exists and
   * its entry is durable, making it again if `create` finds it missing.
   */
  async within<T>(dir: string, create: () => Promise<T>): Promise<T> {
    await this.ensure(dir);
    try {
      return await create();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.known.delete(dir);
      await this.ensure(dir);
      return await create();
    }
  }

  /** Resolves once `dir` exists and its entry (and each level made above it) is fsync'd. */
  ensure(dir: string): Promise<void> {
    if (this.known.has(dir)) return Promise.resolve();
    let making = this.making.get(dir);
    if (!making) {
      making = this.make(dir).finally(() => this.making.delete(dir));
      this.making.set(dir, making);
    }
    return making;
  }

  private async make(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true });
    for (let level = dir; ; level = dirname(level)) {
      await this.syncParent(level);
      if (first === undefined || level === first || dirname(level) === level) break;
    }
    // Bounded: a store writing into millions of directories forgets the oldest, and asks again.
    if (this.known.size >= 10_000) this.known.clear();
    this.known.add(dir);
  }

  private async syncParent(dir: string): Promise<void> {
    const parent = dirname(dir);
    try {
      await this.syncDirectory(parent);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const outside = relative(this.root, parent).startsWith("..");
      if (!(outside && (code === "EACCES" || code === "EPERM"))) throw error;
    }
  }
}

/**
 * fsyncs of directories, shared: a caller waits for an fsync that started after its call (so
 * after its renames), and every caller that arrives while one runs shares the next one. With many
 * puts at once in one batch's folder, one fsync makes the renames of all of them durable.
 */
export class DirectorySync {
  private readonly dirs = new Map<string, { running?: Promise<void>; next?: Promise<void> }>();

  /** `syncDirectory`: how one fsync of a directory is made (the folder store's: on a file thread). */
  constructor(private readonly syncDirectory: (dir: string) => Promise<void>) {}

  sync(dir: string): Promise<void> {
    let state = this.dirs.get(dir);
    if (!state) {
      state = {};
      this.dirs.set(dir, state);
    }
    // Not started yet: it starts after this caller's renames, so it covers them.
    if (state.next) return state.next;
    if (!state.running) return this.start(dir, state);
    const current = state;
    const next = state.running
      .catch(() => {})
      .then(() => {
        current.next = undefined;
        return this.start(dir, current);
      });
    state.next = next;
    return next;
  }

  private start(dir: string, state: { running?: Promise<void>; next?: Promise<void> }): Promise<void> {
    const running: Promise<void> = this.syncDirectory(dir).finally(() => {
      if (state.running !== running) return;
      state.running = undefined;
      if (!state.next) this.dirs.delete(dir);
    });
    state.running = running;
    return running;
  }
}
