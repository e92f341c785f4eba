/**
 * Invariant 3: every task KIE may have charged is traceable. A task id that came back is logged at
 * info the moment it is known and recorded in the ledger before any other Redis call; a record
 * that meets a failover (READONLY) or a restart (LOADING) is tried again for as long as the job
 * is this worker's, not a fixed number of times.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../../src/core/logger.js";
import { silentLogger } from "../../src/core/logger.js";
import { createLedger, type Ledger } from "../../src/ledger/index.js";
import type { SubmitJob } from "../../src/worker/jobs.js";
import { isTransientRedisError } from "../../src/worker/record.js";
import { JobLostError } from "../../src/worker/stage.js";
import { runSubmit, type SubmitDeps } from "../../src/worker/submit.js";
import { openFleet } from "../helpers/open-fleet.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";
import { fakeClock, stageJob } from "../helpers/stage-fakes.js";
import { submitOnlyKie } from "../helpers/submit-only-kie.js";

const redis = testRedis();
let prefix: string;
let ledger: Ledger;

afterAll(async () => {
  await redis.quit();
});
afterEach(async () => {
  await cleanupPrefix(redis, prefix);
});

/** A Redis reply error as ioredis raises it. */
function replyError(message: string): Error {
  const error = new Error(message);
  error.name = "ReplyError";
  return error;
}

/** A log that keeps every line, in order. */
function recordingLog(lines: { level: string; obj: unknown; msg: string | undefined }[]): Logger {
  const log = silentLogger();
  for (const level of ["info", "warn", "error"] as const) {
    (log as unknown as Record<string, unknown>)[level] = (obj: unknown, msg?: string) => {
      lines.push({ level, obj, msg: typeof obj === "string" ? obj : msg });
    };
  }
  return log;
}

async function setup(failures: { transition?: Error[]; backoffRemaining?: Error[] }) {
  prefix = uniquePrefix("rec");
  ledger = createLedger(redis, { prefix });
  await ledger.addRows("b", [
    { id: "r1", line: 2, prompt: "a heron", params: {}, metadata: {}, estimatedCredits: 8 },
  ]);
  const calls: string[] = [];
  const failTransition = [...(failures.transition ?? [])];
  const failBackoff = [...(failures.backoffRemaining ?? [])];
  const kie = submitOnlyKie(async () => {
    calls.push("create");
    return "task-1";
  });
  const fleet = openFleet({
    resume: async () => {
      calls.push("resume");
    },
    backoffRemaining: async () => {
      calls.push("backoffRemaining");
      const error = failBackoff.shift();
      if (error) throw error;
      return 0;
    },
    clearBackoff: async () => {
      calls.push("clearBackoff");
    },
  });
  const deps: SubmitDeps = {
    kie,
    ledger: {
      batchMarks: async () => ({ cancelled: false, purging: false }),
      getRow: (batch, rowId) => ledger.getRow(batch, rowId),
      getRowState: (batch, rowId) => ledger.getRowState(batch, rowId),
      reserveBudget: (batch, rowId, credits) => ledger.reserveBudget(batch, rowId, credits),
      releaseReservation: (batch, rowId) => ledger.releaseReservation(batch, rowId),
      keepUncertain: (batch, rowId, credits) => ledger.keepUncertain(batch, rowId, credits),
      transition: async (batch, rowId, input) => {
        calls.push(input.addTaskId ? "record" : "transition");
        const error = input.addTaskId ? failTransition.shift() : undefined;
        if (error) throw error;
        return ledger.transition(batch, rowId, input);
      },
    },
    fleet,
    queues: {
      addPoll: async () => {
        calls.push("addPoll");
      },
    },
    clock: fakeClock(),
    settings: { pollFirstMs: 1_000 },
  };
  return { deps, calls };
}

const job = (): SubmitJob => ({ batch: "b", rowId: "r1", resubmit: 0 });

describe("submit: the task id of a create is never lost", () => {
  it("READONLY and LOADING between the create and the record: the record is tried until it lands", async () => {
    // A failover, then a restart loading a large dataset: more failures than the 20 tries of old.
    const failures = [
      ...Array.from({ length: 5 }, () => replyError("READONLY You can't write against a read only replica.")),
      ...Array.from({ length: 25 }, () => replyError("LOADING Redis is loading the dataset in memory")),
    ];
    const f = await setup({ transition: failures });
    const lines: { level: string; obj: unknown; msg: string | undefined }[] = [];
    const owned: boolean[] = [];
    const result = await runSubmit(
      stageJob(job(), {
        log: recordingLog(lines),
        stillOwned: async () => {
          owned.push(true);
          return true;
        },
      }),
      f.deps,
    );
    expect(result).toEqual({ kind: "done" });
    expect(await ledger.getRow("b", "r1")).toMatchObject({ status: "submitted", taskIds: ["task-1"] });
    expect(f.calls.filter((c) => c === "create")).toHaveLength(1);
    expect(f.calls.filter((c) => c === "record")).toHaveLength(31);
    // Logged at info the moment it was known, before the first try to record it.
    const created = lines.findIndex((l) => l.level === "info" && l.msg === "task created");
    const firstFailure = lines.findIndex((l) => l.level === "error");
    expect(created).toBeGreaterThanOrEqual(0);
    expect(lines[created]?.obj).toMatchObject({ taskId: "task-1" });
    expect(created).toBeLessThan(firstFailure);
    expect(owned.length).toBeGreaterThan(0);
  });

  it("no other Redis call comes between the answer and the record (a failover there lost the task id)", async () => {
    // The first Redis call after the create fails: before, that was the backoff read, and the
    // task id was lost with it.
    const f = await setup({
      backoffRemaining: [replyError("READONLY You can't write against a read only replica.")],
    });
    await runSubmit(stageJob(job()), f.deps).catch(() => undefined);
    const afterCreate = f.calls.slice(f.calls.indexOf("create") + 1);
    expect(afterCreate[0]).toBe("record");
    expect(await ledger.getRow("b", "r1")).toMatchObject({ status: "submitted", taskIds: ["task-1"] });
  });

  it("stops retrying once the job is another worker's (that one counts the attempt uncertain)", async () => {
    const f = await setup({ transition: Array.from({ length: 3 }, () => replyError("LOADING loading")) });
    // Held when the create goes out; then its lock lapses while Redis loads.
    let asked = 0;
    const run = runSubmit(stageJob(job(), { stillOwned: async () => asked++ === 0 }), f.deps);
    await expect(run).rejects.toBeInstanceOf(JobLostError);
    expect(f.calls.filter((c) => c === "create")).toHaveLength(1);
    expect(f.calls.filter((c) => c === "record")).toHaveLength(1);
  });

  it.each([
    ["READONLY You can't write against a read only replica.", true],
    ["LOADING Redis is loading the dataset in memory", true],
    ["Connection is closed.", true],
    ["ERR Error running script: bad argument", false],
    ["WRONGTYPE Operation against a key holding the wrong kind of value", false],
  ])("%s is transient: %s", (message, transient) => {
    expect(isTransientRedisError(replyError(message))).toBe(transient);
  });
});
