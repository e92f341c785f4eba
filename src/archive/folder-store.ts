import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, open, readFile, stat, statfs, unlink } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { type Readable, Transform } from "node:stream";
import { destroyOnAbort } from "./abort-body.js";
import {
  DirectorySync,
  discard,
  KnownDirectories,
  publish,
  type TempFile,
  writeTempBuffer,
  writeTempStream,
} from "./atomic-file.js";
import { byteCounter } from "./count-bytes.js";
import { FileThreads } from "./file-thread.js";
import { assertValidKey } from "./keys.js";
import { assertValidMetadata } from "./metadata.js";
import { readSmall } from "./read-small.js";
import { ArchiveStoreError, folderStoreError } from "./store-error.js";
import { TempFolder, type TempFolderOptions } from "./temp-folder.js";
import type { ArchiveStore, ArchiveStoreHead } from "./types.js";

/** What the hidden `.<name>.meta.json` beside each object holds. */
interface MetaFile {
  contentType: string;
  metadata: Record<string, string>;
}

/** A put body up to this size is read into memory and written in one go; a longer one is streamed. */
const SMALL_OBJECT_BYTES = 1 << 20;

/**
 * An ArchiveStore writing `<rootDir>/<key>`. Each file is written (a put's body up to 1 MiB as
 * one buffer, a longer one streamed) to a temporary file in the process's own folder under the
 * root (`temp-folder.ts`: swept when its process is gone), fsync'd and renamed over the target, so a reader never sees a partial
 * file (`atomic-file.ts`). Metadata goes to a hidden `.<name>.meta.json`, written beside the
 * object's temporary file and renamed after the object: a crash in between leaves the new object
 * with no (or the old) metadata, never the new metadata on an old object, so a "same task-id
 * already archived" check stays safe. `put` resolves after an fsync of the directory that began
 * after both renames. A body read whole is written on a file thread (`file-thread.ts`), one
 * request for the object and its metadata; `close` stops those threads.
 */
export function createFolderStore(rootDir: string, temps: TempFolderOptions = {}): ArchiveStore {
  const root = resolve(rootDir);

  const pathOf = (key: string): string => {
    assertValidKey(key);
    const path = resolve(root, key);
    const inside = relative(root, path);
    if (inside === "" || inside.startsWith("..") || isAbsolute(inside)) {
      throw new ArchiveStoreError({
        code: "invalid_key",
        message: `Archive key ${JSON.stringify(key)} escapes ${root}`,
      });
    }
    return path;
  };
  const metaPathOf = (path: string): string => join(dirname(path), `.${basename(path)}.meta.json`);
  const threads = new FileThreads();
  const dirs = new KnownDirectories(root, (dir) => threads.syncDirectory(dir));
  const dirSync = new DirectorySync((dir) => threads.syncDirectory(dir));
  // Made at the first put: a store that only reads (the dashboard's) makes and sweeps nothing.
  const temp = new TempFolder(root, temps);

  /**
   * The object and its metadata file, each written and fsync'd under a temporary name (side by
   * side), then renamed into place, object first, and made durable by an fsync of their
   * directory. A body in one buffer goes to a file thread as one request, the directory's fsync
   * included (file-thread.ts); a streamed one is written through `fs.promises`, its directory's
   * fsync shared with the streamed puts beside it (`DirectorySync`).
   */
  const writeObject = (...args: Parameters<typeof writeOnce>): Promise<void> =>
    writeOnce(...args).catch((error: unknown) => {
      throw temp.putError(error, args[0]);
    });
  const writeOnce = async (
    path: string,
    body: Readable | Buffer,
    meta: MetaFile,
    signal: AbortSignal | undefined,
    through?: Transform,
  ): Promise<void> => {
    const metaBytes = Buffer.from(`${JSON.stringify(meta)}\n`);
    // The folder and its entry first (once per folder): before any rename into it, and the
    // temporary files' place depends on its file system. A thread makes it again only when it
    // went missing behind the store's back.
    let object: TempFile;
    let metaFile: TempFile;
    try {
      await dirs.ensure(dirname(path));
      const [objectTemp, metaTemp] = await temp.namesFor([path, metaPathOf(path)], dirs);
      object = { temp: objectTemp!, path };
      metaFile = { temp: metaTemp!, path: metaPathOf(path) };
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      throw error;
    }
    if (Buffer.isBuffer(body)) {
      signal?.throwIfAborted();
      await threads.write(
        [
          { ...object, bytes: body },
          { ...metaFile, bytes: metaBytes },
        ],
        { syncDirectory: dirname(path) },
      );
      return;
    }
    const written = await Promise.allSettled([
      writeTempStream(dirs, object, body, signal, through),
      writeTempBuffer(dirs, metaFile, metaBytes, signal),
    ]);
    const files = written.map((result) => (result.status === "fulfilled" ? result.value : undefined));
    // The object's own failure first: a failed download says more than its metadata's abort.
    const failed = written.find((result) => result.status === "rejected");
    if (failed) {
      await discard(files);
      throw failed.reason;
    }
    await publish(dirs, files as TempFile[]);
    await dirSync.sync(dirname(path));
  };

  return {
    locationOf(key) {
      return pathOf(key);
    },

    async freeBytes() {
      // The root's file system, or its nearest existing parent's (where the root will be made).
      for (let dir = root; ; dir = dirname(dir)) {
        const fs = await statfs(dir).catch(() => undefined);
        // What an unprivileged writer may use (not the blocks ext4 keeps for root: a root in a
        // user namespace or behind root_squash may not write them either).
        if (fs !== undefined) return Number(fs.bavail) * Number(fs.bsize);
        // Not known (a file system without statfs): the probe's write says.
        if (dirname(dir) === dir) return undefined;
      }
    },

    async put(key, body, options) {
      let path = key;
      try {
        path = pathOf(key);
        const metadata = options.metadata ?? {};
        assertValidMetadata(metadata);
        // A small body is read whole and written as one buffer: no file stream per object.
        const bytes = await readSmall(body, SMALL_OBJECT_BYTES, options.signal);
        const meta = { contentType: options.contentType, metadata };
        if (Buffer.isBuffer(bytes)) {
          await writeObject(path, bytes, meta, options.signal);
          options.onStored?.(bytes.length);
        } else {
          const counter = options.onStored ? byteCounter() : undefined;
          await writeObject(path, bytes, meta, options.signal, counter?.through);
          if (counter) options.onStored?.(counter.bytes());
        }
      } catch (error) {
        body.destroy();
        throw folderStoreError(error, path, options.signal);
      }
    },

    async copy(fromKey, toKey, options) {
      let path = toKey;
      try {
        const from = pathOf(fromKey);
        path = pathOf(toKey);
        const metadata = options.metadata ?? {};
        assertValidMetadata(metadata);
        const info = await stat(from).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT") throw error;
          throw new ArchiveStoreError({
            code: "failed",
            message: `No object at ${from} to copy`,
            location: from,
          });
        });
        if (!info.isFile()) {
          throw new ArchiveStoreError({
            code: "failed",
            message: `No object at ${from} to copy`,
            location: from,
          });
        }
        // The bytes are hashed as they are copied: the caller compares them with the checksum
        // it expects, so a source changed since it was indexed is caught, not copied on.
        const hash = createHash("sha256");
        let bytes = 0;
        const hashing = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            hash.update(chunk);
            bytes += chunk.length;
            callback(null, chunk);
          },
        });
        const meta = { contentType: options.contentType, metadata };
        await writeObject(path, createReadStream(from), meta, options.signal, hashing);
        return { bytes, sha256: hash.digest("hex") };
      } catch (error) {
        throw folderStoreError(error, path, options.signal);
      }
    },

    async get(key, options = {}) {
      const path = pathOf(key);
      options.signal?.throwIfAborted();
      let handle: FileHandle;
      try {
        handle = await open(path, "r");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw folderStoreError(error, path, options.signal);
      }
      try {
        // Size and time from the open file: a put renaming a new file over the path meanwhile
        // does not mix the new file's size with the old file's bytes.
        const info = await handle.stat();
        if (!info.isFile()) {
          await handle.close();
          return undefined;
        }
        const contentType = await contentTypeOf(metaPathOf(path));
        // Every await is above: the stream is made last, when nothing can abort before the caller
        // holds it; an abort after that destroys it without an error event, which no listener may
        // be there to take yet (an unheard stream error would end the dashboard's process).
        options.signal?.throwIfAborted();
        return {
          body: destroyOnAbort(handle.createReadStream(), options.signal),
          size: info.size,
          etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}-${info.ino.toString(16)}"`,
          contentType,
        };
      } catch (error) {
        await handle.close().catch(() => {});
        throw folderStoreError(error, path, options.signal);
      }
    },

    async head(key) {
      const path = pathOf(key);
      let size: number;
      try {
        const info = await stat(path);
        if (!info.isFile()) return undefined;
        size = info.size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw folderStoreError(error, path, undefined);
      }
      let metadata: Record<string, string> = {};
      try {
        metadata = (JSON.parse(await readFile(metaPathOf(path), "utf8")) as MetaFile).metadata ?? {};
      } catch (error) {
        // No (or an unreadable) metadata file: a crash between the object's rename and its
        // metadata's. Empty metadata makes an "already archived?" check write again: safe.
        if (
          typeof (error as { syscall?: unknown }).syscall === "string" &&
          (error as NodeJS.ErrnoException).code !== "ENOENT"
        ) {
          throw folderStoreError(error, path, undefined);
        }
      }
      return { size, metadata } satisfies ArchiveStoreHead;
    },

    async remove(key) {
      const path = pathOf(key);
      for (const file of [metaPathOf(path), path]) {
        try {
          await unlink(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT")
            throw folderStoreError(error, file, undefined);
        }
      }
    },

    async close() {
      await threads.close();
      await temp.close();
    },
  };
}

/** The content type recorded beside an object, or `application/octet-stream` without one. */
async function contentTypeOf(metaPath: string): Promise<string> {
  try {
    const meta = JSON.parse(await readFile(metaPath, "utf8")) as Partial<MetaFile>;
    return typeof meta.contentType === "string" ? meta.contentType : "application/octet-stream";
  } catch {
    return "application/octet-stream";
  }
}
