import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileThreads } from "../../src/archive/file-thread.js";

let dir: string;
let threads: FileThreads;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kie-file-thread-"));
  threads = new FileThreads(2);
});
afterEach(async () => {
  await threads.close();
  await rm(dir, { recursive: true, force: true });
});

const file = (name: string, text: string) => ({
  temp: join(dir, `.${name}.t.tmp`),
  path: join(dir, name),
  bytes: Buffer.from(text),
});

describe("file threads", () => {
  it("write lands every file whole under its name, making a missing directory, and leaves no temporary file", async () => {
    const nested = {
      ...file("x", "one"),
      temp: join(dir, "a", "b", ".x.tmp"),
      path: join(dir, "a", "b", "x"),
    };
    await threads.write([nested, file("y", "two")]);
    expect(await readFile(join(dir, "a", "b", "x"), "utf8")).toBe("one");
    expect(await readFile(join(dir, "y"), "utf8")).toBe("two");
    expect((await readdir(dir)).sort()).toEqual(["a", "y"]);
    expect(await readdir(join(dir, "a", "b"))).toEqual(["x"]);
  });

  it("the caller's buffer stays its own (copied, not transferred away)", async () => {
    const bytes = Buffer.from("still here");
    await threads.write([{ ...file("z", ""), bytes }]);
    expect(bytes.toString()).toBe("still here");
    expect(await readFile(join(dir, "z"), "utf8")).toBe("still here");
  });

  it("a write that fails on its second file leaves nothing: no file renamed, no temporary file; the error is fs's own", async () => {
    await writeFile(join(dir, "blocker"), "a file where a directory should be");
    const second = {
      temp: join(dir, "blocker", ".n.tmp"),
      path: join(dir, "blocker", "n"),
      bytes: Buffer.from("2"),
    };
    const failed = threads.write([file("first", "1"), second]);
    await expect(failed).rejects.toMatchObject({ code: "ENOTDIR", syscall: "open", path: second.temp });
    await expect(failed).rejects.toBeInstanceOf(Error);
    expect(await readdir(dir)).toEqual(["blocker"]);
  });

  it("a rename that fails keeps the files renamed before it and deletes the temporary files after it", async () => {
    // A non-empty directory where the second file goes: its rename fails.
    await mkdir(join(dir, "taken"));
    await writeFile(join(dir, "taken", "inside"), "x");
    const write = threads.write([file("a", "1"), file("taken", "2"), file("c", "3")]);
    await expect(write).rejects.toMatchObject({ syscall: "rename" });
    expect((await readdir(dir)).sort()).toEqual(["a", "taken"]);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("1");
  });

  it("many writes at once, over more than the pool's threads, all land", async () => {
    const files = Array.from({ length: 40 }, (_, i) => file(`f${i}`, `bytes ${i}`));
    await Promise.all(files.map((f) => threads.write([f])));
    for (const [i, f] of files.entries()) expect(await readFile(f.path, "utf8")).toBe(`bytes ${i}`);
    expect(await readdir(dir)).toHaveLength(40);
  });

  it("syncDirectory answers for a directory and fails with fs's error for a missing one", async () => {
    await expect(threads.syncDirectory(dir)).resolves.toBeUndefined();
    await expect(threads.syncDirectory(join(dir, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("after close, a write is refused as the store unavailable (retryable: a row's archive is tried again)", async () => {
    await threads.write([file("a", "1")]);
    await threads.close();
    await expect(threads.write([file("b", "2")])).rejects.toMatchObject({
      name: "ArchiveStoreError",
      code: "unavailable",
      retryable: true,
      message: expect.stringMatching(/closed/),
    });
  });

  it("writes still waiting when the store closes fail as unavailable, not as a row's failure", async () => {
    const waiting = Array.from({ length: 3 }, (_, i) =>
      threads.write([file(`w${i}`, "x".repeat(1_000_000))]),
    );
    // Their outcomes are taken before the close, which rejects them at once.
    const outcomes = waiting.map((write) =>
      write.then(
        () => "written",
        (error: unknown) => error,
      ),
    );
    await threads.close();
    for (const outcome of await Promise.all(outcomes)) {
      expect(outcome).toMatchObject({ name: "ArchiveStoreError", code: "unavailable", retryable: true });
    }
  });

  it("each directory a write makes is fsync'd in its parent before the file counts as written; an existing one is not", async () => {
    const log = join(await mkdtemp(join(tmpdir(), "kie-fsync-log-")), "fsyncs");
    // The thread's fsyncs, by path, appended to `log` in the order made.
    const recording = new FileThreads(
      1,
      `{ const fs = process.getBuiltinModule("node:fs"); const paths = new Map();
        const open = fs.openSync, fsync = fs.fsyncSync, append = fs.appendFileSync;
        fs.openSync = (p, ...rest) => { const fd = open(p, ...rest); paths.set(fd, String(p)); return fd; };
        fs.fsyncSync = (fd) => { fsync(fd); if (paths.get(fd) !== ${JSON.stringify(log)}) append(${JSON.stringify(log)}, paths.get(fd) + "\\n"); }; }`,
    );
    try {
      const nested = (name: string) => ({
        temp: join(dir, "a", "b", `.${name}.t.tmp`),
        path: join(dir, "a", "b", name),
        bytes: Buffer.from(name),
      });
      await recording.write([nested("x")], { syncDirectory: join(dir, "a", "b") });
      expect((await readFile(log, "utf8")).trim().split("\n")).toEqual([
        join(dir, "a"), // b's entry
        dir, // a's entry
        join(dir, "a", "b", ".x.t.tmp"),
        join(dir, "a", "b"),
      ]);
      await writeFile(log, "");
      await recording.write([nested("y")], { syncDirectory: join(dir, "a", "b") });
      expect((await readFile(log, "utf8")).trim().split("\n")).toEqual([
        join(dir, "a", "b", ".y.t.tmp"),
        join(dir, "a", "b"),
      ]);
    } finally {
      await recording.close();
      await rm(dirname(log), { recursive: true, force: true });
    }
  });

  it("a missing folder that another thread makes first (after a purge) still has its entry fsync'd before this write", async () => {
    const log = join(await mkdtemp(join(tmpdir(), "kie-fsync-log-")), "fsyncs");
    // Every mkdir of ".../race" is beaten by "another thread": the folder is made just before it,
    // so this thread's own mkdir finds it made.
    const racing = new FileThreads(
      1,
      `{ const fs = process.getBuiltinModule("node:fs"); const paths = new Map();
        const open = fs.openSync, fsync = fs.fsyncSync, append = fs.appendFileSync, mkdir = fs.mkdirSync;
        fs.mkdirSync = (p, o) => { if (String(p).endsWith("race")) mkdir(p, o); return mkdir(p, o); };
        fs.openSync = (p, ...rest) => { const fd = open(p, ...rest); paths.set(fd, String(p)); return fd; };
        fs.fsyncSync = (fd) => { fsync(fd); if (paths.get(fd) !== ${JSON.stringify(log)}) append(${JSON.stringify(log)}, paths.get(fd) + "\\n"); }; }`,
    );
    try {
      const race = join(dir, "race");
      await racing.write([{ temp: join(race, ".r.t.tmp"), path: join(race, "r"), bytes: Buffer.from("r") }], {
        syncDirectory: race,
      });
      expect((await readFile(log, "utf8")).trim().split("\n")).toEqual([dir, join(race, ".r.t.tmp"), race]);
    } finally {
      await racing.close();
      await rm(dirname(log), { recursive: true, force: true });
    }
  });

  it("a write's directory fsync runs after its renames, and its failure is reported with the files left in place", async () => {
    const write = threads.write([file("a", "1")], { syncDirectory: join(dir, "missing") });
    await expect(write).rejects.toMatchObject({
      code: "ENOENT",
      syscall: "open",
      path: join(dir, "missing"),
    });
    expect(await readFile(join(dir, "a"), "utf8")).toBe("1");
    await expect(threads.write([file("b", "2")], { syncDirectory: dir })).resolves.toBeUndefined();
  });

  it("a thread that dies fails the writes it held as unavailable (retried, not a row's failure), and the next write gets a new thread", async () => {
    // Each thread exits on a message naming a "crash" file, before its own handler sees it.
    const dying = new FileThreads(
      1,
      `process.getBuiltinModule("node:worker_threads").parentPort.on("message", (m) => {
        if (m.files && m.files.some((f) => f.path.endsWith("crash"))) process.exit(3);
      });`,
    );
    try {
      await dying.write([file("before", "1")]);
      const lost = dying.write([file("crash", "2")]);
      await expect(lost).rejects.toMatchObject({
        name: "ArchiveStoreError",
        code: "unavailable",
        retryable: true,
        message: expect.stringMatching(/exit code 3/),
      });
      await dying.write([file("after", "3")]);
      expect(await readFile(join(dir, "after"), "utf8")).toBe("3");
      expect(await readdir(dir)).not.toContain("crash");
    } finally {
      await dying.close();
    }
  });

  it("a thread that dies between its fsyncs and its renames leaves no temporary file behind", async () => {
    // The thread exits at the rename of a "crash" file: its temporary files are written and fsync'd.
    const dying = new FileThreads(
      1,
      `{ const fs = process.getBuiltinModule("node:fs"); const rename = fs.renameSync;
        fs.renameSync = (from, to) => { if (String(to).endsWith("crash")) process.exit(3); return rename(from, to); }; }`,
    );
    try {
      const lost = dying.write([file("crash", "2"), file("crash-meta", "3")]);
      await expect(lost).rejects.toMatchObject({ code: "unavailable", retryable: true });
      // Deleted when the thread's exit is seen (the rejection comes first): a moment later.
      await expect.poll(async () => (await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await dying.close();
    }
  });

  it("close deletes the temporary files of the writes it fails, once their threads have stopped", async () => {
    // The thread never answers: each write waits until the store closes.
    const silent = new FileThreads(
      1,
      `{ const fs = process.getBuiltinModule("node:fs");
        fs.renameSync = () => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000); }; }`,
    );
    const waiting = silent.write([file("held", "1")]);
    const outcome = waiting.catch((error: unknown) => error);
    await expect.poll(async () => readdir(dir)).toEqual([".held.t.tmp"]);
    await silent.close();
    expect(await outcome).toMatchObject({ code: "unavailable" });
    expect(await readdir(dir)).toEqual([]);
  });

  it("idle threads do not keep a process alive: a script that writes and never closes exits by itself", async () => {
    const module = fileURLToPath(new URL("../../src/archive/file-thread.ts", import.meta.url));
    const script = `
      const { FileThreads } = await import(${JSON.stringify(module)});
      const threads = new FileThreads();
      await threads.write([{ temp: ${JSON.stringify(join(dir, ".s.tmp"))}, path: ${JSON.stringify(join(dir, "s"))}, bytes: Buffer.from("ok") }]);
      console.log("written");
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code] = await once(child, "exit");
    clearTimeout(timer);
    expect(out.trim()).toBe("written");
    expect(code).toBe(0);
    expect(await readFile(join(dir, "s"), "utf8")).toBe("ok");
  });
});
