/**
 * The folder store's directories: each one's entry fsync'd in its parent before a file in it
 * counts as stored, also when that fsync failed once, when two puts meet a new folder at once, and
 * when a restarted worker finds the folder made by one that died before its fsync.
 */
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KnownDirectories } from "../../src/archive/atomic-file.js";

let parent: string;
let root: string;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), "kie-dirs-"));
  root = join(parent, "archive");
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

/** A syncDirectory that records each directory and can be told to fail or to wait. */
function recorder() {
  const synced: string[] = [];
  const failures: unknown[] = [];
  let gate: Promise<void> | undefined;
  const sync = async (dir: string) => {
    await gate;
    const failure = failures.shift();
    if (failure !== undefined) throw failure;
    synced.push(dir);
  };
  return {
    synced,
    failures,
    hold() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    sync,
  };
}

const errno = (code: string) => Object.assign(new Error(code), { code, syscall: "open" });

describe("folder store directories", () => {
  it("a new folder's entry, and each level made above it, is fsync'd deepest first; the next put asks nothing", async () => {
    const r = recorder();
    const dirs = new KnownDirectories(root, r.sync);
    await dirs.ensure(join(root, "batch"));
    expect(r.synced).toEqual([root, parent]);
    await dirs.ensure(join(root, "batch"));
    expect(r.synced).toEqual([root, parent]);
  });

  it("a parent fsync that fails fails the put, and the next put fsyncs it again (the folder exists by then)", async () => {
    const r = recorder();
    r.failures.push(errno("EIO"));
    const dirs = new KnownDirectories(root, r.sync);
    await expect(dirs.within(join(root, "b"), async () => "written")).rejects.toMatchObject({ code: "EIO" });
    expect((await stat(join(root, "b"))).isDirectory()).toBe(true);
    expect(r.synced).toEqual([]);
    await expect(dirs.within(join(root, "b"), async () => "written")).resolves.toBe("written");
    expect(r.synced).toEqual([root]);
  });

  it("two puts meeting a new folder at once both wait for its entry's fsync", async () => {
    const r = recorder();
    const release = r.hold();
    const dirs = new KnownDirectories(root, r.sync);
    const created: string[] = [];
    const one = dirs.within(join(root, "b"), async () => void created.push("one"));
    const two = dirs.within(join(root, "b"), async () => void created.push("two"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(created).toEqual([]);
    release();
    await Promise.all([one, two]);
    expect(created.sort()).toEqual(["one", "two"]);
    expect(r.synced).toEqual([root, parent]);
  });

  it("a folder found made (a worker that died before its fsync) has its entry fsync'd on first sight", async () => {
    await mkdir(join(root, "b"), { recursive: true });
    const r = recorder();
    await new KnownDirectories(root, r.sync).ensure(join(root, "b"));
    expect(r.synced).toEqual([root]);
  });

  it("a parent above the root that may not be opened is passed over; one inside the root may not", async () => {
    const r = recorder();
    // "b"'s entry (in the root) is fsync'd; the root's, in a parent it may not open, is refused.
    r.failures.push(undefined, errno("EACCES"));
    const dirs = new KnownDirectories(root, r.sync);
    await dirs.ensure(join(root, "b"));
    expect(r.synced).toEqual([root]);

    const inside = recorder();
    inside.failures.push(errno("EACCES"));
    await expect(new KnownDirectories(root, inside.sync).ensure(join(root, "c"))).rejects.toMatchObject({
      code: "EACCES",
    });
  });
});
