/**
 * A task's later calls go out with its own key. A task recorded without a key is the deployment's
 * default key's, never the worker's first key's. A worker without the key leaves the poll while a
 * live worker holds it; once none has for the grace, the row fails and its in-flight slot (under
 * the task's key) goes back.
 */
import { describe, expect, it } from "vitest";
import { type KeyLane, keyRing } from "../../src/fleet/key-ring.js";
import type { FleetPort } from "../../src/fleet/port.js";
import type { KieApi } from "../../src/kie/types.js";
import type { PollJob } from "../../src/worker/jobs.js";
import { keyMissing, taskLane } from "../../src/worker/task-key.js";
import { fakeClock, oneRowLedger, rowRecord, stageJob, T0 } from "../helpers/stage-fakes.js";

const DAY_MS = 86_400_000;
const lane = (id: string): KeyLane => ({ id, account: id, kie: {} as KieApi, fleet: {} as FleetPort });
const [A, B, D] = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "dddddddddddddddd"];
const pollJob = (data: Partial<PollJob> = {}) =>
  stageJob<PollJob>({
    batch: "b",
    rowId: "r1",
    resubmit: 0,
    taskId: "t-1",
    submittedAt: T0,
    checks: 3,
    ...data,
  });

describe("taskLane", () => {
  it("a recorded key's lane, or missing; a task recorded without a key is the default key's", () => {
    const ring = keyRing([lane(A), lane(B)], { keylessId: D });
    expect(taskLane(ring, { taskKeys: { "t-1": B } }, "t-1")).toMatchObject({ kie: ring.lane(B)!.kie });
    expect(taskLane(ring, { taskKeys: { "t-1": "cccccccccccccccc" } }, "t-1")).toEqual({
      missing: "cccccccccccccccc",
    });
    // Not the worker's first key (A): another account's key would not find the task.
    expect(taskLane(ring, {}, "t-1")).toEqual({ missing: D });
    expect(taskLane(keyRing([lane(D), lane(A)], { keylessId: D }), {}, "t-1")).toMatchObject({
      fleet: expect.anything(),
    });
    expect(taskLane(undefined, {}, "t-1")).toEqual({});
  });
});

describe("keyMissing", () => {
  function setup(status: "submitted" | "archiving" = "submitted") {
    const ledger = oneRowLedger(
      rowRecord({
        status,
        taskId: "t-1",
        taskIds: ["t-1"],
        ...(status === "archiving" ? { completedAt: T0 } : {}),
      }),
    );
    const clock = fakeClock();
    const released: string[] = [];
    let held = false;
    const deps = {
      ledger,
      clock,
      graceMs: 60_000,
      held: async () => held,
      releaseInFlight: async (id: string, jobKey: string) => void released.push(`${id} ${jobKey}`),
      fileLifetimeMs: 14 * DAY_MS,
    };
    const row = () => ledger.current()!;
    return { deps, ledger, clock, released, row, hold: (value: boolean) => (held = value) };
  }

  it("waits while some live worker holds the key, however long; fails the row once none has for the grace", async () => {
    const f = setup();
    f.hold(true);
    expect(await keyMissing(pollJob({ keyMissingSince: T0 - 3_600_000 }), f.deps, B, f.row())).toEqual({
      kind: "delay",
      ms: 30_000,
      data: pollJob().data,
    });
    f.hold(false);
    const first = await keyMissing(pollJob(), f.deps, B, f.row());
    expect(first).toEqual({ kind: "delay", ms: 30_000, data: { ...pollJob().data, keyMissingSince: T0 } });
    f.clock.advance(59_999);
    expect((await keyMissing(pollJob({ keyMissingSince: T0 }), f.deps, B, f.row())).kind).toBe("delay");
    expect(f.ledger.current()?.status).toBe("submitted");
    f.clock.advance(1);
    expect(await keyMissing(pollJob({ keyMissingSince: T0 }), f.deps, B, f.row())).toEqual({ kind: "done" });
    expect(f.ledger.current()?.status).toBe("failed");
    expect(f.ledger.current()?.error).toContain(`API key ${B}`);
    // Its in-flight slot, under the task's key, goes back with it.
    expect(f.released).toEqual([`${B} b/r1`]);
  });

  it("a row already archiving (paid for) waits for the key while its files live, its job kept; then fails naming the key", async () => {
    const f = setup("archiving");
    const warned: string[] = [];
    const job = (data: Partial<PollJob> = {}) => {
      const j = pollJob(data);
      j.log.warn = ((_fields: unknown, message: string) => void warned.push(message)) as typeof j.log.warn;
      return j;
    };
    f.clock.advance(60_000);
    // Past the grace a polling row gets, still left in archiving, its poll delayed (a live job:
    // the reconciler neither adds it again nor counts a repair), said once at warn.
    const first = await keyMissing(job(), f.deps, B, f.row());
    expect(first).toEqual({
      kind: "delay",
      ms: 5 * 60_000,
      data: { ...pollJob().data, keyMissingSince: T0 + 60_000 },
    });
    expect(await keyMissing(job({ keyMissingSince: T0 + 60_000 }), f.deps, B, f.row())).toMatchObject({
      kind: "delay",
    });
    expect(warned).toHaveLength(1);
    expect(f.ledger.current()?.status).toBe("archiving");
    expect(f.released).toEqual([]);
    // The last wait ends with the files' lifetime.
    f.clock.advance(14 * DAY_MS - 60_000 - 1_000);
    expect(await keyMissing(job({ keyMissingSince: T0 + 60_000 }), f.deps, B, f.row())).toMatchObject({
      kind: "delay",
      ms: 1_000,
    });
    f.clock.advance(1_000);
    expect(await keyMissing(job({ keyMissingSince: T0 + 60_000 }), f.deps, B, f.row())).toEqual({
      kind: "done",
    });
    expect(f.ledger.current()).toMatchObject({
      status: "failed",
      error: expect.stringContaining(`API key ${B}`),
    });
    expect(f.ledger.current()?.error).toContain("KIE_FILE_LIFETIME");
    expect(f.released).toEqual([]);
  });

  it("a row archiving whose archive job is there is left to that job, even past its files' lifetime", async () => {
    const f = setup("archiving");
    const deps = { ...f.deps, archiveJobLive: async () => true };
    f.clock.advance(15 * DAY_MS);
    expect(await keyMissing(pollJob({ keyMissingSince: T0 }), deps, B, f.row())).toEqual({ kind: "done" });
    expect(f.ledger.current()?.status).toBe("archiving");
  });

  it("a polling row's wait is said once at warn, then at debug", async () => {
    const f = setup();
    const warned: string[] = [];
    for (const data of [{}, { keyMissingSince: T0 }, { keyMissingSince: T0 }]) {
      const j = pollJob(data);
      j.log.warn = ((_fields: unknown, message: string) => void warned.push(message)) as typeof j.log.warn;
      expect((await keyMissing(j, f.deps, B, f.row())).kind).toBe("delay");
    }
    expect(warned).toHaveLength(1);
  });

  it("notes the wait for `status` while no live worker holds the key, not while one does", async () => {
    const f = setup();
    const noted: string[] = [];
    const deps = { ...f.deps, noteWait: async (id: string) => void noted.push(id) };
    f.hold(true);
    await keyMissing(pollJob(), deps, B, f.row());
    expect(noted).toEqual([]);
    f.hold(false);
    await keyMissing(pollJob(), deps, B, f.row());
    // A note that fails does not fail the poll.
    const failing = { ...f.deps, noteWait: async () => Promise.reject(new Error("down")) };
    expect((await keyMissing(pollJob({ keyMissingSince: T0 }), failing, B, f.row())).kind).toBe("delay");
    expect(noted).toEqual([B]);
  });
});
