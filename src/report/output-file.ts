import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { finished } from "node:stream/promises";

/**
 * Writes a file atomically: everything goes to a temporary file beside it, which is flushed to
 * disk and renamed over `path` only when `write` succeeded. Readers never see half a file, and a
 * failed or interrupted run leaves the previous file as it was.
 */
export async function writeFileAtomically<T>(
  path: string,
  write: (stream: NodeJS.WritableStream) => Promise<T>,
): Promise<T> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const stream = createWriteStream(temp, { flags: "wx" });
  try {
    const result = await write(stream);
    stream.end();
    await finished(stream);
    const handle = await open(temp, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    return result;
  } catch (error) {
    stream.destroy();
    await rm(temp, { force: true });
    throw error;
  }
}
