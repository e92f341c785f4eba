import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FileThreads } from "../../src/archive/file-thread.js";
import { createFolderStore } from "../../src/archive/folder-store.js";
import { putJson } from "../../src/archive/sidecar.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { digestOf, pngBytes, pngStream } from "../helpers/image-server.js";

let parent: string;
let root: string;
let store: ArchiveStore;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), "kie-folder-"));
  root = join(parent, "archive");
  store = createFolderStore(root);
});
afterEach(async () => {
  await store.close();
  await rm(parent, { recursive: true, force: true });
});

/** A stream that yields `bytes` of a PNG, then fails once the store has read them. */
function failingAfter(bytes: number, error: Error): Readable {
  const out = new PassThrough();
  pngBytes(bytes * 2).then(async (png) => {
    if (!out.write(png.subarray(0, bytes))) await once(out, "drain");
    out.destroy(error);
  });
  return out;
}

/** This process's temporary folder under the root (`.kie-tmp/<host>-<pid>-<random>`), once made. */
async function tempFolder(): Promise<string> {
  const [own] = await readdir(join(root, ".kie-tmp"));
  return join(root, ".kie-tmp", own!);
}

/**
 * Resolves once the object's temporary file in the process's temporary folder holds `bytes`
 * bytes: the store is mid-write. (Its metadata's temporary file is written there at the same time.)
 */
async function writingTempFile(bytes: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const dir = await tempFolder();
      const temp = (await readdir(dir)).find(
        (name) => name.endsWith(".tmp") && !name.includes(".meta.json."),
      );
      expect(temp && (await stat(join(dir, temp))).size).toBe(bytes);
    },
    { timeout: 5_000, interval: 5 },
  );
}

describe("folder store", () => {
  it("tells the free bytes of its file system (the probe's floor after a full disk), its parent's before its folder exists", async () => {
    expect(await store.freeBytes?.()).toBeGreaterThan(0);
    await store.put("b/r.json", Readable.from([Buffer.from("{}")]), { contentType: "application/json" });
    const fs = await statfs(root);
    const free = await store.freeBytes?.();
    // The same file system's figure, give or take what the disk gained or lost since.
    // What an unprivileged writer may use (never the blocks kept for root).
    expect(Math.abs(free! - Number(fs.bavail) * Number(fs.bsize))).toBeLessThan(64 * 1_048_576);
  });

  it("writes <root>/<key> with exact bytes, and head returns size and metadata", async () => {
    await store.put("batch-1/row-1.png", pngStream(3_000_000, 3), {
      contentType: "image/png",
      metadata: { "task-id": "t-1", seed: "42" },
    });
    const path = join(root, "batch-1", "row-1.png");
    expect(store.locationOf("batch-1/row-1.png")).toBe(path);
    expect(await digestOf(Readable.from([await readFile(path)]))).toEqual(
      await digestOf(pngStream(3_000_000, 3)),
    );
    expect(await store.head("batch-1/row-1.png")).toEqual({
      size: 3_000_000,
      metadata: { "task-id": "t-1", seed: "42" },
    });
    // Only the object and its hidden metadata file: no temporary file is left behind.
    expect((await readdir(join(root, "batch-1"))).sort()).toEqual([".row-1.png.meta.json", "row-1.png"]);
  });

  it("reports the bytes it stored, written whole or streamed, and nothing for a put that failed", async () => {
    const stored: number[] = [];
    const onStored = (bytes: number) => stored.push(bytes);
    await store.put("b/small.png", pngStream(40_000, 1), { contentType: "image/png", onStored });
    await store.put("b/large.png", pngStream(3_000_000, 2), { contentType: "image/png", onStored });
    expect(stored).toEqual([40_000, 3_000_000]);
    await expect(
      store.put("b/broken.png", failingAfter(2_000_000, new Error("cut")), {
        contentType: "image/png",
        onStored,
      }),
    ).rejects.toThrow("cut");
    expect(stored).toEqual([40_000, 3_000_000]);
  });

  it("puts at once into one folder all land whole, and a folder deleted behind the store is made again", async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `batch-2/row-${i}.png`);
    await Promise.all(
      keys.map((key, i) =>
        store.put(key, pngStream(20_000 + i, i), { contentType: "image/png", metadata: { n: `${i}` } }),
      ),
    );
    for (const [i, key] of keys.entries())
      expect(await store.head(key)).toEqual({ size: 20_000 + i, metadata: { n: `${i}` } });
    expect((await readdir(join(root, "batch-2"))).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    // The store remembers the folder it made; a purge deleting it must not break the next put.
    await rm(join(root, "batch-2"), { recursive: true });
    await store.put("batch-2/again.png", pngStream(1_000, 1), { contentType: "image/png" });
    expect(await store.head("batch-2/again.png")).toEqual({ size: 1_000, metadata: {} });
  });

  it("a small put's thread request fsyncs its folder after the renames (the put counts as done only then)", async () => {
    const write = vi.spyOn(FileThreads.prototype, "write");
    try {
      await store.put("b/s.png", Readable.from([await pngBytes(100)]), { contentType: "image/png" });
      expect(write).toHaveBeenCalledTimes(1);
      expect(write.mock.calls[0]?.[1]).toEqual({ syncDirectory: join(root, "b") });
    } finally {
      write.mockRestore();
    }
  });

  it("a streamed put into a new folder fsyncs the folder's entry in its parent (each level made) before the file; the next put there does not", async () => {
    const sync = vi.spyOn(FileThreads.prototype, "syncDirectory");
    try {
      // Past the 1 MiB read whole: streamed, so its folder is made by the store, not a thread.
      await store.put("new/one.png", pngStream(1_500_000, 1), { contentType: "image/png" });
      // Deepest first: "new" in the archive root, then the root in its parent; then the
      // process's temporary folder, made at its first put (its entry and .kie-tmp's); the
      // file's rename into "new" last.
      const temps = join(root, ".kie-tmp");
      expect(sync.mock.calls.map(([dir]) => dir)).toEqual([root, parent, temps, root, join(root, "new")]);
      sync.mockClear();
      await store.put("new/two.png", pngStream(1_500_000, 2), { contentType: "image/png" });
      expect(sync.mock.calls.map(([dir]) => dir)).toEqual([join(root, "new")]);
    } finally {
      sync.mockRestore();
    }
  });

  it("head of a missing key is undefined", async () => {
    expect(await store.head("nope/missing.png")).toBeUndefined();
  });

  it("a reader never sees a partial file while it is being written", async () => {
    // Past the 1 MiB a put reads whole before writing: this body is streamed to its file.
    const body = new PassThrough();
    const png = await pngBytes(1_600_000);
    const writing = store.put("b/slow.png", body, { contentType: "image/png" });
    body.write(png.subarray(0, 1_300_000));
    await writingTempFile(1_300_000);
    expect(await store.head("b/slow.png")).toBeUndefined();
    const visible = (await readdir(join(root, "b"))).filter((name) => !name.startsWith("."));
    expect(visible).toEqual([]);
    body.end(png.subarray(1_300_000));
    await writing;
    expect((await readFile(join(root, "b", "slow.png"))).equals(png)).toBe(true);
  });

  it("a small body is written only once it has ended: nothing, not even a temporary file, before", async () => {
    const body = new PassThrough();
    const png = await pngBytes(200_000);
    const writing = store.put("b/small.png", body, { contentType: "image/png", metadata: { n: "1" } });
    body.write(png.subarray(0, 100_000));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Not even the store's folder: nothing is made before the body has ended.
    expect(await readdir(parent)).toEqual([]);
    body.end(png.subarray(100_000));
    await writing;
    expect((await readFile(join(root, "b", "small.png"))).equals(png)).toBe(true);
    expect(await store.head("b/small.png")).toEqual({ size: 200_000, metadata: { n: "1" } });
    expect((await readdir(join(root, "b"))).sort()).toEqual([".small.png.meta.json", "small.png"]);
  });

  it("a failed stream leaves no file, no temporary file, and the previous version intact", async () => {
    const old = await pngBytes(1000, 1);
    await store.put("b/x.png", Readable.from([old]), {
      contentType: "image/png",
      metadata: { "task-id": "old" },
    });

    const cause = new Error("download cut");
    await expect(
      store.put("b/x.png", failingAfter(200_000, cause), { contentType: "image/png" }),
    ).rejects.toBe(cause);
    await expect(
      store.put("b/y.png", failingAfter(200_000, cause), { contentType: "image/png" }),
    ).rejects.toBe(cause);

    expect((await readFile(join(root, "b", "x.png"))).equals(old)).toBe(true);
    expect(await store.head("b/x.png")).toEqual({ size: 1000, metadata: { "task-id": "old" } });
    expect(await store.head("b/y.png")).toBeUndefined();
    expect((await readdir(join(root, "b"))).sort()).toEqual([".x.png.meta.json", "x.png"]);
  });

  it("an abort rejects with the signal's reason and leaves nothing", async () => {
    const controller = new AbortController();
    const body = new PassThrough();
    // Past the 1 MiB read whole: the abort meets a file being streamed.
    body.write(await pngBytes(1_100_000));
    const writing = store.put("b/aborted.png", body, { contentType: "image/png", signal: controller.signal });
    await writingTempFile(1_100_000);
    controller.abort(new Error("shutdown"));
    await expect(writing).rejects.toThrow("shutdown");
    expect(body.destroyed).toBe(true);
    expect(await readdir(join(root, "b"))).toEqual([]);
    expect(await readdir(await tempFolder())).toEqual([]);
  });

  it("an abort while a small body is read rejects with the signal's reason, destroys it and leaves nothing", async () => {
    const controller = new AbortController();
    const body = new PassThrough();
    body.write(await pngBytes(10_000));
    const writing = store.put("b/aborted.png", body, { contentType: "image/png", signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort(new Error("shutdown"));
    await expect(writing).rejects.toThrow("shutdown");
    expect(body.destroyed).toBe(true);
    expect(await readdir(parent)).toEqual([]);
  });

  it("replaces an existing object and its metadata", async () => {
    await store.put("b/r.png", Readable.from([await pngBytes(100, 1)]), {
      contentType: "image/png",
      metadata: { "task-id": "a" },
    });
    await store.put("b/r.png", Readable.from([await pngBytes(200, 2)]), {
      contentType: "image/png",
      metadata: { "task-id": "b" },
    });
    expect(await store.head("b/r.png")).toEqual({ size: 200, metadata: { "task-id": "b" } });
  });

  it("an object whose metadata file is missing (a crash between the renames) has empty metadata", async () => {
    await store.put("b/m.png", Readable.from([await pngBytes(100)]), {
      contentType: "image/png",
      metadata: { "task-id": "t" },
    });
    await rm(join(root, "b", ".m.png.meta.json"));
    expect(await store.head("b/m.png")).toEqual({ size: 100, metadata: {} });
  });

  it.each([
    "../escape.png",
    "a/../../escape.png",
    "/tmp/escape.png",
    "a/./b.png",
    "a//b.png",
    "",
    "b/.x.png.meta.json",
  ])("refuses the key %j, writes nothing and destroys the body", async (key) => {
    const body = Readable.from([await pngBytes(100)]);
    await expect(store.put(key, body, { contentType: "image/png" })).rejects.toMatchObject({
      name: "ArchiveStoreError",
      code: "invalid_key",
      retryable: false,
    });
    expect(body.destroyed).toBe(true);
    expect(() => store.locationOf(key)).toThrow();
    await expect(store.head(key)).rejects.toMatchObject({ code: "invalid_key" });
    expect((await readdir(parent)).filter((name) => name !== "archive")).toEqual([]);
  });

  it("refuses metadata S3 would refuse, so both stores behave alike", async () => {
    await expect(
      store.put("b/meta.png", Readable.from([await pngBytes(100)]), {
        contentType: "image/png",
        metadata: { prompt: "一只猫" },
      }),
    ).rejects.toMatchObject({ code: "invalid_metadata", retryable: false });
  });

  it("a file-system failure is an ArchiveStoreError", async () => {
    // A file where the batch directory should be: mkdir fails with EEXIST/ENOTDIR.
    await store.put("blocker", Readable.from([Buffer.from("x")]), { contentType: "text/plain" });
    await expect(
      store.put("blocker/x.png", Readable.from([await pngBytes(100)]), { contentType: "image/png" }),
    ).rejects.toMatchObject({ name: "ArchiveStoreError", retryable: false });
  });

  it("putJson writes pretty UTF-8 JSON that round-trips Chinese text", async () => {
    const row = {
      id: "row-1",
      prompt: "一只在月光下的猫，水墨画风格",
      metadata: { 作者: "张三" },
      bytes: 12,
    };
    await putJson(store, "b/row-1.json", row);
    const text = await readFile(join(root, "b", "row-1.json"), "utf8");
    expect(JSON.parse(text)).toEqual(row);
    expect(text).toContain('\n  "prompt": "一只在月光下的猫，水墨画风格"');
  });

  it("does not mistake a stray file of the same name in another directory", async () => {
    await writeFile(join(parent, "row.png"), "outside");
    expect(await store.head("row.png")).toBeUndefined();
  });
});
