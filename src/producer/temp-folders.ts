import { rmSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * The private temporary folders of `enqueue` (the stdin copy, the valid rows of the first pass):
 * removed when the run ends, also when a signal ends it (`removeTempFoldersNow`, from the
 * command's SIGINT/SIGTERM handler: a finally never runs then), and, when a run was killed
 * outright (SIGKILL, out of memory), by a later run once the folder's process is gone and a day
 * has passed. A million-row run's rows take ~220 MB there.
 */

/** A folder of a run whose process is gone is left this long before a later run removes it. */
const STALE_AFTER_MS = 24 * 3_600_000;

/** `kie-batch-<kind>-<pid>-<random>`: the pid tells a later run whether its maker still runs. */
const NAME = /^kie-batch-(?:rows|stdin)-(\d+)-[A-Za-z0-9]+$/;

const live = new Set<string>();

export interface TempFolder {
  path: string;
  /** Deletes the folder and what is in it; never fails on one already gone. */
  remove(): Promise<void>;
}

/** Makes a private folder for `kind` under `dir`, first removing the stale ones of killed runs. */
export async function makeTempFolder(dir: string, kind: "rows" | "stdin"): Promise<TempFolder> {
  await removeStaleFolders(dir).catch(() => undefined);
  const path = await mkdtemp(join(dir, `kie-batch-${kind}-${process.pid}-`));
  live.add(path);
  return {
    path,
    async remove() {
      live.delete(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** Removes every folder of this process still there, at once: a signal is ending the run. */
export function removeTempFoldersNow(): void {
  for (const path of live) rmSync(path, { recursive: true, force: true });
  live.clear();
}

/** The folders a killed run left: its process gone (on this host) and a day old. */
async function removeStaleFolders(dir: string, now = Date.now()): Promise<void> {
  for (const name of await readdir(dir)) {
    const pid = NAME.exec(name)?.[1];
    if (pid === undefined || running(Number(pid))) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory() && now - info.mtimeMs > STALE_AFTER_MS)
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: another user's process, alive.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
