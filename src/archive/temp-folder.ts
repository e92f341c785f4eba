import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import type { KnownDirectories } from "./atomic-file.js";
import { ArchiveStoreError } from "./store-error.js";

/** The folder under a folder store's root that holds each process's temporary files. */
export const TEMP_FOLDER = ".kie-tmp";

/** How old (by mtime, against this process's own folder) another process's folder is swept. */
const STALE_MS = 60 * 60_000;
/** How often a live process touches its folder's mtime. */
const HEARTBEAT_MS = 60_000;
/** How often a store sweeps the other processes' folders (and at its first put). */
const SWEEP_EVERY_MS = 60 * 60_000;

export interface TempFolderOptions {
  /** @defaultValue one hour */
  staleMs?: number;
  /** @defaultValue one minute */
  heartbeatMs?: number;
  /** @defaultValue one hour */
  sweepEveryMs?: number;
  /** What a sweep removed, and the folders it could not (a log's to say; nothing else tells). */
  onSweep?: (outcome: SweepOutcome) => void;
}

/** The other processes' folders a sweep removed, and those it could not remove. */
export interface SweepOutcome {
  removed: string[];
  failed: { folder: string; error: unknown }[];
}

/**
 * A folder store's temporary files, in a folder of this process's own under the root
 * (`.kie-tmp/<host>-<pid>-<random>/`), renamed from there into place. They used to be written
 * beside their targets, and a worker killed mid-put (SIGKILL, the OOM killer, a power loss) left
 * them there for good: nothing lists a batch folder of millions of files to find them. The folder
 * is made at the process's first put and its mtime touched every minute while the process lives
 * (a file made and removed in it); each store sweeps, at its first put and then every hour, the
 * other processes' folders whose mtime is over an hour older than its own's (the file system's
 * clock on both sides, so hosts sharing one NFS root need no common clock). A put whose temporary
 * file went meanwhile (its process stopped for over an hour: a suspended VM) fails as
 * `unavailable` and is tried again. A target on another file system than the folder's (a mount
 * inside the root) keeps its temporary file beside it, as before: a rename cannot cross them.
 */
export class TempFolder {
  readonly dir: string;
  private count = 0;
  private started: Promise<number> | undefined;
  /** The folder's device, once made. */
  private device: number | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** Whether a target directory is on the folder's file system, by directory (bounded). */
  private readonly sameDevice = new Map<string, boolean>();

  constructor(
    root: string,
    private readonly options: TempFolderOptions = {},
  ) {
    const host = hostname()
      .replace(/[^A-Za-z0-9.-]/g, "_")
      .slice(0, 64);
    this.dir = join(root, TEMP_FOLDER, `${host}-${process.pid}-${randomBytes(4).toString("hex")}`);
  }

  /**
   * The temporary names of files to be renamed to `paths`: in this process's folder (made at the
   * first call), or beside a path whose directory is on another file system (or a rename into it
   * was refused as crossing one: `putError`). Once the folder is made and a directory met, no
   * file-system call.
   */
  async namesFor(
    paths: readonly string[],
    dirs: Pick<KnownDirectories, "ensure" | "within">,
  ): Promise<string[]> {
    if (this.device === undefined) {
      this.started ??= this.start(dirs).catch((error: unknown) => {
        this.started = undefined;
        throw error;
      });
      this.device = await this.started;
    }
    const names: string[] = [];
    for (const path of paths) {
      const dir = dirname(path);
      let same = this.sameDevice.get(dir);
      if (same === undefined) {
        // Made again when it went missing behind the store (its cache said it was there).
        same = (await dirs.within(dir, () => stat(dir))).dev === this.device;
        this.remember(dir, same);
      }
      const count = (this.count++).toString(36);
      names.push(
        same
          ? join(this.dir, `${basename(path)}.${count}.tmp`)
          : join(dir, `.${basename(path)}.${basename(this.dir)}-${count}.tmp`),
      );
    }
    return names;
  }

  /**
   * A put's error as its caller sees it: a rename refused as crossing file systems (EXDEV) makes
   * the target's directory take its temporary files beside the targets from now on, and fails this
   * put as `unavailable` (tried again); any other error as it is.
   */
  putError(error: unknown, path: string): unknown {
    if ((error as NodeJS.ErrnoException | null)?.code !== "EXDEV") return error;
    this.remember(dirname(path), false);
    return new ArchiveStoreError({
      code: "unavailable",
      message: `${path}: a rename from ${this.dir} was refused as crossing file systems; its folder's files are now written beside them`,
      cause: error,
    });
  }

  private remember(dir: string, same: boolean): void {
    if (this.sameDevice.size >= 10_000) this.sameDevice.clear();
    this.sameDevice.set(dir, same);
  }

  /** Makes the folder, starts the heartbeat and the sweeps; the folder's device. */
  private async start(dirs: Pick<KnownDirectories, "ensure">): Promise<number> {
    await dirs.ensure(this.dir);
    const device = (await stat(this.dir)).dev;
    // Closed meanwhile (a put begun just before the store's close): no timer, no folder left.
    if (this.closed) {
      await rm(this.dir, { recursive: true, force: true });
      return device;
    }
    const beat = setInterval(
      () => void this.heartbeat().catch(() => {}),
      this.options.heartbeatMs ?? HEARTBEAT_MS,
    );
    const sweep = setInterval(
      () => void this.sweep().catch(() => {}),
      this.options.sweepEveryMs ?? SWEEP_EVERY_MS,
    );
    for (const timer of [beat, sweep]) timer.unref();
    this.timers = [beat, sweep];
    void this.sweep().catch(() => {});
    return device;
  }

  /** Touches the folder's mtime (made again if a sweep took it: a process stopped for an hour). */
  async heartbeat(): Promise<void> {
    if (this.closed) return;
    const alive = join(this.dir, ".alive");
    await writeFile(alive, "").catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
      await mkdir(this.dir, { recursive: true });
      await writeFile(alive, "");
    });
    // Another heartbeat of this process (the timer's, a sweep's) may have removed it already.
    await unlink(alive).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }

  /**
   * Removes the other processes' folders whose mtime is `staleMs` older than this one's; how many.
   * A folder it cannot remove (another user's, a read-only mount) is told to `onSweep`, and the
   * sweep goes on to the next.
   */
  async sweep(): Promise<number> {
    await this.heartbeat();
    const now = (await stat(this.dir)).mtimeMs;
    const parent = dirname(this.dir);
    const outcome: SweepOutcome = { removed: [], failed: [] };
    for (const name of await readdir(parent)) {
      const folder = join(parent, name);
      if (folder === this.dir) continue;
      const info = await lstat(folder).catch(() => undefined);
      if (info === undefined || now - info.mtimeMs <= (this.options.staleMs ?? STALE_MS)) continue;
      await rm(folder, { recursive: true, force: true }).then(
        () => outcome.removed.push(folder),
        (error: unknown) => outcome.failed.push({ folder, error }),
      );
    }
    if (outcome.removed.length + outcome.failed.length > 0) this.options.onSweep?.(outcome);
    return outcome.removed.length;
  }

  /** Stops the heartbeat and removes the folder (best effort: the next sweep takes what is left). */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (this.started) await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}
