/**
 * The folder store's temporary files live in a folder of the process's own under the root
 * (`.kie-tmp/<host>-<pid>-<random>/`, temp-folder.ts): a worker killed mid-put leaves them there,
 * never in a batch folder, and a later store sweeps the folders of processes gone for an hour.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KnownDirectories } from "../../src/archive/atomic-file.js";
import { FileThreads } from "../../src/archive/file-thread.js";
import { createFolderStore } from "../../src/archive/folder-store.js";
import { classifyStoreError, isArchiveStoreError } from "../../src/archive/store-error.js";
import { type SweepOutcome, TempFolder } from "../../src/archive/temp-folder.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { pngBytes } from "../helpers/image-server.js";

let parent: string;
let root: string;
const stores: ArchiveStore[] = [];
const open = (options?: Parameters<typeof createFolderStore>[1]) => {
  const store = createFolderStore(root, options);
  stores.push(store);
  return store;
};

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), "kie-temps-"));
  root = join(parent, "archive");
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(parent, { recursive: true, force: true });
});

const temps = () => join(root, ".kie-tmp");
/** A folder left by a process gone `ageMs` ago, holding a half-written file. */
async function deadFolder(name: string, ageMs: number): Promise<string> {
  const dir = join(temps(), name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "r1.png.0.tmp"), Buffer.alloc(1000));
  const at = new Date(Date.now() - ageMs);
  await utimes(dir, at, at);
  return dir;
}

describe("the folder store's temporary folder", () => {
  it("holds every temporary file (none in a batch folder), and goes with its store", async () => {
    const store = open();
    await store.put("b/small.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" });
    // Streamed (past the 1 MiB read whole): caught mid-write, in the process's own folder.
    const body = new PassThrough();
    const png = await pngBytes(1_500_000);
    const writing = store.put("b/big.png", body, { contentType: "image/png" });
    body.write(png.subarray(0, 1_200_000));
    const [own] = await readdir(temps());
    await vi.waitFor(async () => {
      const names = await readdir(join(temps(), own!));
      expect(names.filter((name) => name.startsWith("big.png.") && name.endsWith(".tmp"))).toHaveLength(1);
    });
    expect((await readdir(join(root, "b"))).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    body.end(png.subarray(1_200_000));
    await writing;
    expect((await readdir(join(root, "b"))).sort()).toEqual([
      ".big.png.meta.json",
      ".small.png.meta.json",
      "big.png",
      "small.png",
    ]);
    expect(await readdir(join(temps(), own!))).toEqual([]);
    await store.close();
    expect(await readdir(temps())).toEqual([]);
  });

  it("sweeps, at its first put, the folders of processes gone for an hour (by the file system's clock), not a live one's", async () => {
    const dead = await deadFolder("host-1-dead", 2 * 3_600_000);
    const recent = await deadFolder("host-2-recent", 10 * 60_000);
    const store = open();
    await store.put("b/r.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" });
    await vi.waitFor(async () => expect(await readdir(temps())).not.toContain("host-1-dead"));
    const left = await readdir(temps());
    expect(left).toContain("host-2-recent");
    expect(left).toHaveLength(2);
    await expect(stat(dead)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(recent)).resolves.toBeDefined();
  });

  it("a live process's folder is kept fresh by its heartbeat; one swept under it (a process stopped for an hour) is made again by its next put", async () => {
    const old = new Date(Date.now() - 2 * 3_600_000);
    const other = new TempFolder(root);
    // A live process: its heartbeat (each minute) brings its folder's mtime back, and a sweep passes it.
    await mkdir(join(root, "b"), { recursive: true });
    const live = new TempFolder(root);
    await live.namesFor([join(root, "b", "r.png")], new KnownDirectories(root, async () => {}));
    await utimes(live.dir, old, old);
    await live.heartbeat();
    expect(await other.sweep()).toBe(0);
    await live.close();
    // Stopped for two hours (no heartbeat): swept.
    const stopped = new TempFolder(root);
    await stopped.namesFor([join(root, "b", "r.png")], new KnownDirectories(root, async () => {}));
    await stopped.close();
    await mkdir(stopped.dir);
    await utimes(stopped.dir, old, old);
    expect(await other.sweep()).toBe(1);
    await expect(stat(stopped.dir)).rejects.toMatchObject({ code: "ENOENT" });
    await other.close();
    // A store whose folder was swept under it makes it again with its next puts.
    const store = open();
    await store.put("b/one.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" });
    const [own] = await readdir(temps());
    await rm(join(temps(), own!), { recursive: true, force: true });
    await store.put("b/two.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" });
    const body = new PassThrough();
    const writing = store.put("b/three.png", body, { contentType: "image/png" });
    body.end(await pngBytes(1_200_000));
    await writing;
    expect((await readdir(join(root, "b"))).filter((name) => !name.startsWith("."))).toEqual([
      "one.png",
      "three.png",
      "two.png",
    ]);
  });

  it("a put whose temporary file was swept meanwhile fails as unavailable (tried again), leaving the target as it was", async () => {
    const store = open();
    await store.put("b/x.png", Readable.from([await pngBytes(1000, 1)]), { contentType: "image/png" });
    const body = new PassThrough();
    const writing = store.put("b/x.png", body, { contentType: "image/png" });
    body.write(await pngBytes(1_100_000, 2));
    const [own] = await readdir(temps());
    await vi.waitFor(async () => expect(await readdir(join(temps(), own!))).not.toEqual([]));
    await rm(join(temps(), own!), { recursive: true, force: true });
    body.end();
    const error = await writing.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isArchiveStoreError(error) && error.code).toBe("unavailable");
    expect((await store.head("b/x.png"))?.size).toBe(1000);
  });

  it("a file thread makes the target's folder again when it went missing before the rename", async () => {
    const threads = new FileThreads();
    try {
      await mkdir(join(root, "t"), { recursive: true });
      const target = join(root, "gone", "r.png");
      await threads.write(
        [{ temp: join(root, "t", "r.png.0.tmp"), path: target, bytes: Buffer.from("png") }],
        {
          syncDirectory: join(root, "gone"),
        },
      );
      expect(await readdir(join(root, "gone"))).toEqual(["r.png"]);
      expect(await readdir(join(root, "t"))).toEqual([]);
    } finally {
      await threads.close();
    }
  });

  it("a stale NFS handle (the file removed on the server) is tried again, not a failed row", () => {
    expect(classifyStoreError(Object.assign(new Error("stale"), { code: "ESTALE", syscall: "write" }))).toBe(
      "unavailable",
    );
  });

  it("a store closed while its first put makes the folder leaves no folder and no timer", async () => {
    const folder = new TempFolder(root, { heartbeatMs: 20 });
    await mkdir(join(root, "b"), { recursive: true });
    const naming = folder.namesFor([join(root, "b", "r.png")], new KnownDirectories(root, async () => {}));
    await folder.close();
    await naming;
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(stat(folder.dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a key inside the temporary folder", async () => {
    const store = open();
    await expect(
      store.put(".kie-tmp/x/r.png", Readable.from([Buffer.from("x")]), { contentType: "image/png" }),
    ).rejects.toMatchObject({ code: "invalid_key" });
  });
});

/** Whether this machine lets the tests mount a tmpfs (root: CI here). */
function mountTmpfs(dir: string): (() => void) | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  return () => execFileSync("umount", ["-l", dir], { stdio: "ignore" });
}

const CAN_MOUNT = await (async () => {
  const dir = await mkdtemp(join(tmpdir(), "kie-mount-probe-"));
  const unmount = mountTmpfs(dir);
  unmount?.();
  await rm(dir, { recursive: true, force: true });
  return unmount !== undefined;
})();

describe("a dead process's folder a sweep cannot remove", () => {
  it.runIf(CAN_MOUNT)(
    "is told to onSweep (the worker logs it), and the sweep goes on to the next",
    async () => {
      const stuck = join(temps(), "host-1-stuck");
      await mkdir(stuck, { recursive: true });
      const unmount = mountTmpfs(stuck);
      if (!unmount) throw new Error("could not mount a tmpfs");
      try {
        const old = new Date(Date.now() - 2 * 3_600_000);
        await utimes(stuck, old, old);
        const dead = await deadFolder("host-2-dead", 2 * 3_600_000);
        const told: SweepOutcome[] = [];
        const sweeper = new TempFolder(root, { onSweep: (outcome) => told.push(outcome) });
        await mkdir(join(root, "b"), { recursive: true });
        await sweeper.namesFor([join(root, "b", "r.png")], new KnownDirectories(root, async () => {}));
        expect(await sweeper.sweep()).toBe(1);
        const last = told.at(-1)!;
        expect(last.removed).toEqual([dead]);
        expect(last.failed.map(({ folder }) => folder)).toEqual([stuck]);
        await sweeper.close();
      } finally {
        unmount();
      }
    },
  );
});

describe("a batch folder on another file system", () => {
  it.runIf(CAN_MOUNT)(
    "a bind mount of the same file system (one device number, yet a rename across it is refused): the put fails as unavailable once, then its folder's temporaries go beside the targets",
    async () => {
      const source = join(parent, "elsewhere");
      await mkdir(source, { recursive: true });
      await mkdir(join(root, "bound"), { recursive: true });
      execFileSync("mount", ["--bind", source, join(root, "bound")], { stdio: "ignore" });
      try {
        const store = open();
        const put = () =>
          store.put("bound/r.png", Readable.from([Buffer.from("png")]), { contentType: "image/png" });
        const first = await put().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isArchiveStoreError(first) && first.code).toBe("unavailable");
        await put();
        expect((await readdir(join(root, "bound"))).sort()).toEqual([".r.png.meta.json", "r.png"]);
        await store.close();
      } finally {
        execFileSync("umount", ["-l", join(root, "bound")], { stdio: "ignore" });
      }
    },
  );

  it.runIf(CAN_MOUNT)(
    "keeps its temporary files beside their targets (a rename cannot cross file systems)",
    async () => {
      await mkdir(join(root, "mounted"), { recursive: true });
      const unmount = mountTmpfs(join(root, "mounted"));
      if (!unmount) throw new Error("could not mount a tmpfs");
      try {
        const store = open();
        await store.put("mounted/r.png", Readable.from([await pngBytes(1000)]), { contentType: "image/png" });
        const body = new PassThrough();
        const writing = store.put("mounted/big.png", body, { contentType: "image/png" });
        body.end(await pngBytes(1_200_000));
        await writing;
        expect((await readdir(join(root, "mounted"))).sort()).toEqual([
          ".big.png.meta.json",
          ".r.png.meta.json",
          "big.png",
          "r.png",
        ]);
        await store.close();
      } finally {
        unmount();
      }
    },
  );
});
