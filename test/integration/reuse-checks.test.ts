/**
 * What `archiveFromIndex` (worker/reuse.ts) checks before it copies, against a real folder store:
 * a source whose bytes, size, task or sidecar checksums no longer match its entry is not reused
 * (the entry is dropped and the row is created as usual); a row without a seed, a batch enqueued
 * with --no-reuse and a deployment with reuse off never ask; a reused row reserves nothing, and a
 * reservation it held goes back. The submit stage asks before it reserves or takes a rate slot.
 * A job that lost its lock leaves the row (and its reservation) alone; a row cancelled during the
 * copies leaves no copies behind; an entry that is the row itself (purged, enqueued again) is
 * checked in place, never copied onto itself nor removed. On S3 without a checksum of the copy
 * (s3rver), the copy is read back: a source rewritten with other bytes of the same size is not reused.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ArchiveStoreError,
  buildSidecar,
  createFolderStore,
  createS3Store,
  putSidecar,
} from "../../src/archive/index.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import type { ArchivePausePort, ArchivePauseState } from "../../src/fleet/archive-pause.js";
import type { ResultEntry } from "../../src/ledger/index.js";
import type { RowRecord } from "../../src/ledger/types.js";
import { storeGateOf } from "../../src/worker/archive-gate.js";
import { archiveFromIndex, type ReuseDeps } from "../../src/worker/reuse.js";
import { JobLostError } from "../../src/worker/stage.js";
import { type SubmitDeps, submitStage } from "../../src/worker/submit.js";
import { openFleet } from "../helpers/open-fleet.js";
import { s3rverContext } from "../helpers/s3rver-context.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob } from "../helpers/stage-fakes.js";

const IMAGE = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  Buffer.alloc(2_000, 7),
]);
const SHA = createHash("sha256").update(IMAGE).digest("hex");
const SEEDED = { prompt: "a red fox in snow", params: { seed: 11 } };

let dir: string;
let store: ArchiveStore;
let entry: ResultEntry;
const aws = s3rverContext();

/** The source of an entry, row `batch/id`: an image and its sidecar, as the archive stage leaves them. */
async function archivedSource(batch = "old", id = "src", bytes = IMAGE): Promise<ResultEntry> {
  const key = `${batch}/${id}.png`;
  await store.put(key, Readable.from([bytes]), {
    contentType: "image/png",
    metadata: { "task-id": "task-1", batch, "row-id": id },
  });
  const image = {
    key,
    location: store.locationOf(key),
    bytes: IMAGE.length,
    sha256: SHA,
    contentType: "image/png",
  };
  const source = rowRecord({ batch, id, ...SEEDED, taskIds: ["task-1"], status: "archived" });
  await putSidecar(store, buildSidecar(source, [image], { taskId: "task-1", completedAt: 1, archivedAt: 2 }));
  return {
    images: [{ key, bytes: image.bytes, sha256: SHA, contentType: "image/png" }],
    taskId: "task-1",
    batch,
    rowId: id,
    archivedAt: 2,
  };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kie-reuse-"));
  store = createFolderStore(dir);
  entry = await archivedSource();
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function setup(
  row: Partial<RowRecord> = {},
  options: { off?: boolean; found?: ResultEntry | undefined } = {},
) {
  const ledger = oneRowLedger(rowRecord({ batch: "new", id: "row", ...SEEDED, ...row }));
  const lookups: string[] = [];
  const forgotten: string[] = [];
  const recorded: { hash: string; entry: ResultEntry }[] = [];
  const released: string[] = [];
  const deps: ReuseDeps = {
    results: {
      lookup: async (hash) => {
        lookups.push(hash);
        return "found" in options ? options.found : entry;
      },
      reuseOff: async () => options.off === true,
      forget: async (hash) => {
        forgotten.push(hash);
        return true;
      },
      record: async (hash, written) => {
        recorded.push({ hash, entry: written });
        return true;
      },
    },
    store,
    ledger: {
      transition: ledger.transition,
      releaseReservation: async (_batch, rowId) => {
        released.push(rowId);
        // As the ledger does: the row holds nothing after it.
        await ledger.transition("new", rowId, {
          incr: { creditsReserved: -(ledger.current()?.creditsReserved ?? 0) },
        });
        return 8;
      },
    },
    clock: fakeClock(),
  };
  const job = stageJob({ batch: "new", rowId: "row", resubmit: 0 });
  return { deps, ledger, lookups, forgotten, recorded, released, job, row: ledger.current()! };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe("reuse: what is checked before a copy", () => {
  it("a source that checks out is copied to the row's own key, with its own sidecar, and the row archived at 0 credits", async () => {
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    const copy = await readFile(join(dir, "new/row.png"));
    expect(createHash("sha256").update(copy).digest("hex")).toBe(SHA);
    expect(s.ledger.current()).toMatchObject({
      status: "archived",
      reusedFrom: "old/src",
      creditsSpent: 0,
      taskIds: [],
      images: [{ key: "new/row.png", sha256: SHA, bytes: IMAGE.length }],
    });
    expect(s.ledger.transitions.at(-1)).toMatchObject({
      from: ["queued"],
      to: "archived",
      incr: { reused: 1 },
    });
    const sidecar = JSON.parse(await readFile(join(dir, "new/row.json"), "utf8"));
    expect(sidecar).toMatchObject({
      id: "row",
      credits: 0,
      taskId: "task-1",
      sha256: SHA,
      reusedFrom: { batch: "old", rowId: "src" },
    });
    // The copy is itself a source now: the entry is renewed to point at it.
    expect(s.recorded[0]?.entry).toMatchObject({ batch: "new", rowId: "row", taskId: "task-1" });
    expect(s.released).toEqual([]);
  });

  it("bytes changed under the same size and metadata: the copy's checksum does not match, nothing is reused", async () => {
    const other = Buffer.from(IMAGE);
    other[100] = 8;
    await writeFile(join(dir, "old/src.png"), other);
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.ledger.current()?.status).toBe("queued");
    expect(s.ledger.transitions).toEqual([]);
    expect(s.forgotten).toHaveLength(1);
    expect(await exists(join(dir, "new/row.png"))).toBe(false);
  });

  it("a source of another size is not copied at all", async () => {
    await writeFile(join(dir, "old/src.png"), IMAGE.subarray(0, 500));
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.forgotten).toHaveLength(1);
    expect(await exists(join(dir, "new/row.png"))).toBe(false);
  });

  it("a source archived again by another task, or gone, is not reused", async () => {
    await store.put("old/src.png", Readable.from([IMAGE]), {
      contentType: "image/png",
      metadata: { "task-id": "task-2" },
    });
    const replaced = setup();
    expect(await archiveFromIndex(replaced.job, replaced.row, replaced.deps)).toBe(false);
    await store.remove("old/src.png");
    const gone = setup();
    expect(await archiveFromIndex(gone.job, gone.row, gone.deps)).toBe(false);
    expect(gone.forgotten).toHaveLength(1);
  });

  it("a sidecar whose checksum disagrees with the entry's is not trusted", async () => {
    entry = { ...entry, images: [{ ...entry.images[0]!, sha256: "f".repeat(64) }] };
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.forgotten).toHaveLength(1);
  });

  it("a store that fails mid-copy means a normal create, not a stuck or failed row", async () => {
    const s = setup();
    s.deps.store = { ...store, copy: async () => Promise.reject(new Error("disk on fire")) };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.ledger.current()?.status).toBe("queued");
  });

  it("a store that is out (a full disk) means a wait, not a paid create: archiving pauses, the row stays queued, its entry is kept", async () => {
    const s = setup();
    const pause = memoryPause();
    gate(s, pause);
    const full = new ArchiveStoreError({ code: "no_space", message: "ENOSPC: no space left on device" });
    // A nearly full disk: the image's copy is refused while a small write would still go through.
    // No probe is asked: a full disk or quota is the store's, whatever the size.
    s.deps.store = { ...store, copy: async () => Promise.reject(full) };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe("store-out");
    expect(s.ledger.current()?.status).toBe("queued");
    expect(s.forgotten).toEqual([]);
    // Paused fleet-wide (shown and alerted) as the archive stage's outage is, even with no archive job running.
    expect(await pause.port.get()).toMatchObject({
      kind: "store-unavailable",
      reason: expect.stringMatching(/ENOSPC/),
    });
    // Another store error (not an outage) is a row's problem: created as usual.
    pause.lift();
    s.deps.store = {
      ...store,
      copy: async () => Promise.reject(new ArchiveStoreError({ code: "unavailable", message: "503" })),
    };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(await pause.port.get()).toBeNull();
  });

  it("a source the store refuses while it takes writes (moved to Glacier: a 403) is one object's problem: created, entry dropped, no pause", async () => {
    const s = setup();
    const pause = memoryPause();
    const puts: string[] = [];
    s.deps.store = {
      ...store,
      copy: async () =>
        Promise.reject(
          new ArchiveStoreError({
            code: "access_denied",
            message:
              "S3 copy failed (HTTP 403): InvalidObjectState: The operation is not valid for the object's storage class",
          }),
        ),
      put: async (key, body, options) => {
        puts.push(key);
        return store.put(key, body, options);
      },
    };
    // The probe goes to the same store as the copy, as in a worker.
    gate(s, pause, s.deps.store);
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(puts).toEqual([".kie-batch-probe.json"]);
    expect(await pause.port.get()).toBeNull();
    expect(s.forgotten).toHaveLength(1);
    expect(s.ledger.current()?.status).toBe("queued");
  });

  it("a 403 whose probe fails otherwise (a 5xx) says nothing of the source: the entry is kept, the row created, no pause", async () => {
    const s = setup();
    const pause = memoryPause();
    s.deps.store = {
      ...store,
      copy: async () => Promise.reject(new ArchiveStoreError({ code: "access_denied", message: "HTTP 403" })),
      put: async () => Promise.reject(new ArchiveStoreError({ code: "unavailable", message: "HTTP 503" })),
    };
    // The probe goes to the same store as the copy, as in a worker.
    gate(s, pause, s.deps.store);
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.forgotten).toEqual([]);
    expect(await pause.port.get()).toBeNull();
  });

  it("copies made before a refusal of the row's sidecar are removed when the row is created instead", async () => {
    const s = setup();
    s.deps.store = {
      ...store,
      put: async (key, body, options) => {
        if (key === "new/row.json")
          throw new ArchiveStoreError({ code: "access_denied", message: "HTTP 403: AccessDenied" });
        return store.put(key, body, options);
      },
    };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(await store.head("new/row.png")).toBeUndefined();
    expect(s.ledger.current()?.status).toBe("queued");
  });

  it("while archiving is paused, a reusable row waits without asking the store until the probe is due", async () => {
    const s = setup();
    const asked: string[] = [];
    s.deps.store = {
      ...store,
      head: async (key, signal) => {
        asked.push(key);
        return store.head(key, signal);
      },
    };
    const pause = memoryPause({ kind: "store-unavailable", reason: "ENOSPC", since: 1 });
    gate(s, pause, s.deps.store);
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe("store-out");
    expect(asked).toEqual([]);
    expect(pause.claims()).toBe(0);
  });

  it("a due probe is run by the reusing row itself: the store answers, the pause lifts, the row is reused", async () => {
    const s = setup();
    const pause = memoryPause({ kind: "store-unavailable", reason: "ENOSPC", since: 1, nextProbeAt: 1 });
    gate(s, pause);
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    expect(pause.claims()).toBe(1);
    expect(await pause.port.get()).toBeNull();
    expect(s.ledger.current()).toMatchObject({ status: "archived", reusedFrom: "old/src" });
  });

  it("a row with nothing to reuse is created during a store outage as before (its image waits in archiving)", async () => {
    const s = setup({}, { found: undefined });
    const pause = memoryPause({ kind: "store-unavailable", reason: "ENOSPC", since: 1 });
    gate(s, pause);
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
  });

  it("never asks for a row without a seed, a --no-reuse batch, reuse off, or a row that has a task", async () => {
    const seedless = setup({ params: { image_size: "square" } });
    expect(await archiveFromIndex(seedless.job, seedless.row, seedless.deps)).toBe(false);
    expect(seedless.lookups).toEqual([]);
    const off = setup({}, { off: true });
    expect(await archiveFromIndex(off.job, off.row, off.deps)).toBe(false);
    expect(off.ledger.transitions).toEqual([]);
    const disabled = setup();
    expect(await archiveFromIndex(disabled.job, disabled.row, undefined)).toBe(false);
    const tasked = setup({ taskIds: ["t-9"] });
    expect(await archiveFromIndex(tasked.job, tasked.row, tasked.deps)).toBe(false);
    expect(tasked.lookups).toEqual([]);
  });

  it("a crash between the copy and the ledger's move leaves the row queued; the job's next run reuses it", async () => {
    const s = setup({ creditsReserved: 8 });
    const move = s.deps.ledger.transition;
    let calls = 0;
    s.deps.ledger = {
      ...s.deps.ledger,
      transition: async (batch, rowId, input) => {
        // The reservation's release goes through; the move to archived is "lost" once.
        if (input.to === "archived" && calls++ === 0) throw new Error("Redis went away");
        return move(batch, rowId, input);
      },
    };
    await expect(archiveFromIndex(s.job, s.row, s.deps)).rejects.toThrow("Redis went away");
    // Queued, holding nothing: a retry (or the reconciler's new job) reserves anew if it must create.
    expect(s.ledger.current()).toMatchObject({ status: "queued", creditsReserved: 0 });
    expect(await archiveFromIndex(s.job, s.ledger.current()!, s.deps)).toBe(true);
    expect(s.ledger.current()).toMatchObject({ status: "archived", reusedFrom: "old/src" });
  });

  it("a row woken with a reservation gives it back before it is archived", async () => {
    const s = setup({ creditsReserved: 8 });
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    expect(s.released).toEqual(["row"]);
    expect(s.ledger.current()).toMatchObject({ status: "archived", creditsReserved: 0 });
  });

  it("a job whose lock lapsed during the copies neither archives the row nor releases its reservation", async () => {
    const s = setup({ creditsReserved: 8 });
    const job = stageJob({ batch: "new", rowId: "row", resubmit: 0 }, { stillOwned: async () => false });
    expect(await archiveFromIndex(job, s.row, s.deps)).toBe("lost");
    // The worker that holds the job now may be creating the row on that reservation.
    expect(s.released).toEqual([]);
    expect(s.ledger.transitions).toEqual([]);
    expect(s.ledger.current()).toMatchObject({ status: "queued", creditsReserved: 8 });
    // The submit stage hands the job back (JobLostError) without a reservation, a slot or a create.
    const counts = { reserved: 0, slots: 0 };
    const deps = submitDeps(
      s,
      { submit: async () => Promise.reject(new Error("no create expected")) },
      counts,
    );
    await expect(submitStage.run(job, deps)).rejects.toBeInstanceOf(JobLostError);
    expect(counts).toEqual({ reserved: 0, slots: 0 });
    expect(s.ledger.current()).toMatchObject({ status: "queued", creditsReserved: 8 });
    // Still owned: archived as usual.
    const owned = stageJob({ batch: "new", rowId: "row", resubmit: 0 }, { stillOwned: async () => true });
    expect(await archiveFromIndex(owned, s.ledger.current()!, s.deps)).toBe(true);
    expect(s.ledger.current()?.status).toBe("archived");
  });

  it("a row cancelled during the copies leaves no copy or sidecar behind", async () => {
    const s = setup();
    const put = store.put.bind(store);
    s.deps.store = {
      ...store,
      // The sidecar is the last thing written before the move: the cancel lands right after it.
      put: async (key, body, options) => {
        await put(key, body, options);
        await s.ledger.transition("new", "row", { from: ["queued"], to: "cancelled" });
      },
    };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    expect(s.ledger.current()?.status).toBe("cancelled");
    expect(await exists(join(dir, "new/row.png"))).toBe(false);
    expect(await exists(join(dir, "new/row.json"))).toBe(false);
    expect(await exists(join(dir, "old/src.png"))).toBe(true);
    expect(s.recorded).toEqual([]);
  });

  it("an entry that is the row itself (purged, enqueued again) is checked in place, not copied onto itself", async () => {
    entry = await archivedSource("new", "row");
    const s = setup();
    const copies: string[] = [];
    const copy = store.copy.bind(store);
    s.deps.store = {
      ...store,
      copy: async (from, to, options) => {
        copies.push(to);
        return copy(from, to, options);
      },
    };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    expect(copies).toEqual([]);
    expect(s.ledger.current()).toMatchObject({
      status: "archived",
      reusedFrom: "new/row",
      creditsSpent: 0,
      images: [{ key: "new/row.png", sha256: SHA, bytes: IMAGE.length }],
    });
    expect(
      createHash("sha256")
        .update(await readFile(join(dir, "new/row.png")))
        .digest("hex"),
    ).toBe(SHA);
  });

  it("an entry that is the row itself whose bytes changed is not reused, and its object is not removed", async () => {
    const other = Buffer.from(IMAGE);
    other[300] = 1;
    entry = await archivedSource("new", "row", other);
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.forgotten).toHaveLength(1);
    expect(s.ledger.current()?.status).toBe("queued");
    // The create that follows writes over it; reuse never deletes what it did not write.
    expect(await readFile(join(dir, "new/row.png"))).toEqual(other);
  });

  it("an entry of another row whose image sits at this row's key is not reused (no copy over a source)", async () => {
    // Row `new/x` archived two images, `new/x.png` and `new/x-2.png`: the second sits at row `x-2`'s key.
    const second = Buffer.from(IMAGE);
    second[50] = 3;
    const sha2 = createHash("sha256").update(second).digest("hex");
    const images = [
      { key: "new/x.png", bytes: IMAGE, sha256: SHA },
      { key: "new/x-2.png", bytes: second, sha256: sha2 },
    ];
    for (const image of images)
      await store.put(image.key, Readable.from([image.bytes]), {
        contentType: "image/png",
        metadata: { "task-id": "task-1" },
      });
    const archived = images.map((image) => ({
      key: image.key,
      location: store.locationOf(image.key),
      bytes: image.bytes.length,
      sha256: image.sha256,
      contentType: "image/png",
    }));
    const source = rowRecord({ batch: "new", id: "x", ...SEEDED, taskIds: ["task-1"], status: "archived" });
    await putSidecar(
      store,
      buildSidecar(source, archived, { taskId: "task-1", completedAt: 1, archivedAt: 2 }),
    );
    entry = {
      images: archived.map(({ key, bytes, sha256, contentType }) => ({ key, bytes, sha256, contentType })),
      taskId: "task-1",
      batch: "new",
      rowId: "x",
      archivedAt: 2,
    };
    const s = setup({ id: "x-2" });
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.ledger.transitions).toEqual([]);
    expect(await readFile(join(dir, "new/x-2.png"))).toEqual(second);
  });

  it("the submit stage creates as usual when the source fails its checksum", async () => {
    const other = Buffer.from(IMAGE);
    other[200] = 9;
    await writeFile(join(dir, "old/src.png"), other);
    const s = setup();
    const creates: string[] = [];
    const deps = submitDeps(s, {
      submit: async () => {
        creates.push("create");
        return "task-new";
      },
    });
    expect(await submitStage.run(s.job, deps)).toEqual({ kind: "done" });
    expect(creates).toEqual(["create"]);
    expect(s.ledger.current()).toMatchObject({ status: "submitted", taskIds: ["task-new"] });
    expect(s.ledger.current()?.reusedFrom).toBeUndefined();
  });

  it("the submit stage reuses before it reserves credits, takes a rate slot or creates", async () => {
    const s = setup();
    const counts = { reserved: 0, slots: 0 };
    const deps = submitDeps(
      s,
      { submit: async () => Promise.reject(new Error("no create expected")) },
      counts,
    );
    expect(await submitStage.run(s.job, deps)).toEqual({ kind: "done" });
    expect({ ...counts, status: s.ledger.current()?.status }).toEqual({
      reserved: 0,
      slots: 0,
      status: "archived",
    });
  });
});

describe("reuse while the store is out: the submit stage", () => {
  it("delays the job by one store probe, giving back a woken row's reservation, taking no slot and creating nothing", async () => {
    const s = setup({ creditsReserved: 8 });
    const pause = memoryPause({ kind: "store-unavailable", reason: "EACCES", since: 1 });
    gate(s, pause);
    const counts = { reserved: 0, slots: 0 };
    const deps = submitDeps(
      s,
      { submit: async () => Promise.reject(new Error("no create expected")) },
      counts,
    );
    deps.ledger = { ...deps.ledger, releaseReservation: s.deps.ledger.releaseReservation };
    expect(await submitStage.run(s.job, deps)).toEqual({ kind: "delay", ms: 60_000, data: s.job.data });
    expect(s.released).toEqual(["row"]);
    expect(s.ledger.current()).toMatchObject({ status: "queued", creditsReserved: 0 });
    deps.settings = { ...deps.settings, storeProbeMs: 5_000 };
    expect(await submitStage.run(s.job, deps)).toMatchObject({ kind: "delay", ms: 5_000 });
    expect(counts).toEqual({ reserved: 0, slots: 0 });
    // The store back: the job's next run reuses the row.
    pause.lift();
    expect(await submitStage.run(s.job, deps)).toEqual({ kind: "done" });
    expect(s.ledger.current()?.status).toBe("archived");
  });
});

/** Gives `s`'s reuse the archive store's gate over `pause` and `gateStore` (the probe's store). */
function gate(
  s: ReturnType<typeof setup>,
  pause: ReturnType<typeof memoryPause>,
  gateStore: ReuseDeps["store"] = store,
): void {
  s.deps.storeGate = storeGateOf({
    storePause: pause.port,
    store: gateStore,
    clock: fakeClock(),
    settings: {},
  });
}

describe("reuse while the store is out: a job whose lock lapsed", () => {
  it("keeps the row's reservation (another worker may be creating with it) and hands the job back", async () => {
    const s = setup({ creditsReserved: 8 });
    gate(s, memoryPause({ kind: "store-unavailable", reason: "EACCES", since: 1 }));
    const lapsed = stageJob({ batch: "new", rowId: "row", resubmit: 0 }, { stillOwned: async () => false });
    const counts = { reserved: 0, slots: 0 };
    const deps = submitDeps(
      s,
      { submit: async () => Promise.reject(new Error("no create expected")) },
      counts,
    );
    deps.ledger = { ...deps.ledger, releaseReservation: s.deps.ledger.releaseReservation };
    await expect(submitStage.run(lapsed, deps)).rejects.toBeInstanceOf(JobLostError);
    expect(s.released).toEqual([]);
    expect(s.ledger.current()).toMatchObject({ status: "queued", creditsReserved: 8 });
    expect(counts).toEqual({ reserved: 0, slots: 0 });
  });
});

/** The deployment's archive pause in memory: `lift` ends it as a probe elsewhere would. */
function memoryPause(initial: ArchivePauseState | null = null) {
  let state = initial;
  let claims = 0;
  const port: ArchivePausePort = {
    get: async () => state,
    pause: async (kind, reason) => {
      if (state) return false;
      state = { kind, reason, since: 1 };
      return true;
    },
    resume: async (kind) => {
      if (state?.kind === kind) state = null;
    },
    claimProbe: async () => {
      claims++;
      return state?.nextProbeAt !== undefined;
    },
  };
  return {
    port,
    claims: () => claims,
    lift: () => {
      state = null;
    },
  };
}

/** The submit stage's ports around `setup`'s ledger and reuse deps; `counts` tallies reservations and rate slots. */
function submitDeps(
  s: ReturnType<typeof setup>,
  kie: { submit: () => Promise<string> },
  counts = { reserved: 0, slots: 0 },
): SubmitDeps {
  return {
    kie: {
      submit: kie.submit,
      getTask: async () => Promise.reject(new Error("unused")),
      refreshDownloadUrl: async () => Promise.reject(new Error("unused")),
      getCredits: async () => Promise.reject(new Error("unused")),
    },
    ledger: {
      batchMarks: async () => ({ cancelled: false, purging: false }),
      getRow: s.ledger.getRow,
      getRowState: s.ledger.getRowState,
      transition: s.ledger.transition,
      reserveBudget: async () => {
        counts.reserved++;
        return "reserved";
      },
      releaseReservation: async () => 0,
      keepUncertain: async () => 0,
    },
    fleet: openFleet({
      createSlot: async () => {
        counts.slots++;
      },
    }),
    queues: { addPoll: async () => {} },
    reuse: s.deps,
    clock: fakeClock(),
    settings: { pollFirstMs: 5_000 },
  };
}

describe("reuse on S3 (s3rver: no checksum of a copy)", () => {
  beforeEach(async () => {
    store = createS3Store({
      ...aws.s3.clientOptions,
      bucket: aws.s3.bucket,
      prefix: `reuse-${randomUUID().slice(0, 8)}/`,
    });
    entry = await archivedSource();
  });

  it("a missing bucket (every HEAD a bare 404) is a store that is out, not missing objects: the row waits, its entry kept", async () => {
    const s = setup();
    const missing = createS3Store({ ...aws.s3.clientOptions, bucket: `missing-${randomUUID().slice(0, 8)}` });
    s.deps.store = missing;
    const pause = memoryPause();
    gate(s, pause, s.deps.store);
    try {
      expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe("store-out");
      expect(s.forgotten).toEqual([]);
      expect(await pause.port.get()).toMatchObject({ reason: expect.stringMatching(/NoSuchBucket/) });
    } finally {
      await missing.close();
    }
  });

  it("a source deleted from a bucket that is there is missing: the entry is dropped and the row created", async () => {
    await store.remove("old/src.png");
    const s = setup();
    const puts: string[] = [];
    s.deps.store = {
      ...store,
      put: async (key, body, options) => {
        puts.push(key);
        return store.put(key, body, options);
      },
    };
    gate(s, memoryPause(), s.deps.store);
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.forgotten).toHaveLength(1);
    // The store was probed before the entry went, and the probe cleaned up after itself.
    expect(puts).toEqual([".kie-batch-probe.json"]);
    expect(await store.head(".kie-batch-probe.json")).toBeUndefined();
  });

  it("a source that checks out is copied and its copy read back before the row takes it", async () => {
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    expect(s.ledger.current()).toMatchObject({ status: "archived", reusedFrom: "old/src" });
    const copy = await store.get("new/row.png");
    const hash = createHash("sha256");
    for await (const chunk of copy!.body) hash.update(chunk as Buffer);
    expect(hash.digest("hex")).toBe(SHA);
  });

  it("a source rewritten with other bytes of the same size (task and sidecar as they were) is not reused", async () => {
    const other = Buffer.from(IMAGE);
    other[100] = 8;
    await store.put("old/src.png", Readable.from([other]), {
      contentType: "image/png",
      metadata: { "task-id": "task-1", batch: "old", "row-id": "src" },
    });
    const s = setup();
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(false);
    expect(s.ledger.current()?.status).toBe("queued");
    expect(s.forgotten).toHaveLength(1);
    expect(await store.head("new/row.png")).toBeUndefined();
    expect(await store.head("old/src.png")).toMatchObject({ size: IMAGE.length });
  });

  it("the copy names the ETag its source had at the HEAD", async () => {
    const s = setup();
    const ifMatch: (string | undefined)[] = [];
    const copy = store.copy.bind(store);
    s.deps.store = {
      ...store,
      copy: async (from, to, options) => {
        ifMatch.push(options.ifMatch);
        return copy(from, to, options);
      },
    };
    expect(await archiveFromIndex(s.job, s.row, s.deps)).toBe(true);
    expect(ifMatch).toEqual([(await store.head("old/src.png"))?.etag]);
    expect(ifMatch[0]).toMatch(/^"[0-9a-f]{32}"$/);
  });
});
