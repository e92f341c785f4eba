/**
 * The code a folder store's file thread runs (file-thread.ts): apart from the pool that starts
 * the threads, so each file stays readable.
 */

/** The code the thread answers for a temporary file that went before its rename. */
export const TEMP_GONE = "EKIETEMPGONE";

/**
 * The thread's code, plain JavaScript run as an `eval` worker: no file to ship beside dist/,
 * nothing for a loader to transform, modules taken with `process.getBuiltinModule` so it runs as a
 * script or as a module alike (a parent's `--input-type=module` reaches the thread). Each request
 * runs to its end before the next: a thread is one disk queue, and the pool has several.
 */
export const THREAD_SOURCE = `
const fs = process.getBuiltinModule("node:fs");
const { dirname } = process.getBuiltinModule("node:path");
const { parentPort } = process.getBuiltinModule("node:worker_threads");

function openCreating(file) {
  try {
    return fs.openSync(file, "wx");
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
    // The directory is missing (new, or deleted behind the store by a purge): made, then again.
    makeDirectory(dirname(file));
    return fs.openSync(file, "wx");
  }
}

// The store makes and syncs a folder before its first write (KnownDirectories); a thread makes one
// only when it went missing behind the store (a purge). Its entry is fsync'd in its parent, with
// each level made, deepest first, also when found made (another thread racing this one), before
// a file in it counts as stored; a parent it may not open (a drop-box above the root) is passed.
function makeDirectory(dir) {
  const first = fs.mkdirSync(dir, { recursive: true });
  for (let made = dir; ; made = dirname(made)) {
    try {
      syncDirectory(dirname(made));
    } catch (error) {
      if (error.code !== "EACCES" && error.code !== "EPERM") throw error;
    }
    if (first === undefined || made === first || dirname(made) === made) break;
  }
}

function unlinkQuietly(file) {
  try {
    fs.unlinkSync(file);
  } catch {}
}

function write(files) {
  const created = [];
  try {
    for (const file of files) {
      const bytes = new Uint8Array(file.bytes);
      const fd = openCreating(file.temp);
      created.push(file.temp);
      try {
        let at = 0;
        while (at < bytes.length) at += fs.writeSync(fd, bytes, at, bytes.length - at);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (error) {
    for (const temp of created) unlinkQuietly(temp);
    throw error;
  }
  let renamed = 0;
  try {
    for (const file of files) {
      renameInto(file);
      renamed++;
    }
  } catch (error) {
    for (const file of files.slice(renamed)) unlinkQuietly(file.temp);
    throw error;
  }
}

// The target's folder went missing behind the store (it made it before the request): made again.
// The temporary file gone (its process's folder swept) says nothing of the disk: TEMP_GONE.
function renameInto(file) {
  try {
    fs.renameSync(file.temp, file.path);
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
    if (!fs.existsSync(file.temp)) {
      const gone = new Error("temporary file removed while the put ran: " + file.temp);
      gone.code = "${TEMP_GONE}";
      gone.path = file.temp;
      throw gone;
    }
    makeDirectory(dirname(file.path));
    fs.renameSync(file.temp, file.path);
  }
}

function syncDirectory(dir) {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

parentPort.on("message", (request) => {
  try {
    if (request.op === "write") write(request.files);
    if (request.dir !== undefined) syncDirectory(request.dir);
    parentPort.postMessage({ id: request.id });
  } catch (error) {
    const e = error || {};
    parentPort.postMessage({
      id: request.id,
      error: { message: String(e.message), code: e.code, errno: e.errno, syscall: e.syscall, path: e.path },
    });
  }
});
`;
