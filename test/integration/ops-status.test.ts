import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildPauseControls } from "../../src/app/parts.js";
import { runStatus } from "../../src/commands/status.js";
import { accountId, FleetPause } from "../../src/fleet/index.js";
import { registerAccount, resolveAccounts } from "../../src/report/accounts.js";
import { OpsError } from "../../src/report/errors.js";
import { readFleetState } from "../../src/report/fleet-state.js";
import { FILE_LIFETIME_MS, readBatchStatus } from "../../src/report/status.js";
import { waitForBatch } from "../../src/report/status-watch.js";
import { deleteAccountKeys, fakeApiKey } from "../helpers/fleet-redis.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

const CONTRACT_KEYS = [
  "batch",
  "total",
  "queued",
  "submitted",
  "generating",
  "archiving",
  "archived",
  "failed",
  "cancelled",
  "waitingBudget",
  "uncertain",
  "creditsEstimated",
  "creditsReserved",
  "creditsSpent",
  "paused",
];

const HOUR = 3_600_000;

let fx: OpsFixture;
let apiKeys: string[];

beforeEach(() => {
  fx = opsFixture();
  apiKeys = [];
});
afterEach(async () => {
  for (const key of apiKeys) await deleteAccountKeys(fx.redis, key);
  await fx.close();
});

/** A clock frozen at `now`; each sleep runs `onSleep` (which moves rows on) instead of waiting. */
function steppingClock(now: number, onSleep: () => Promise<void> = async () => {}) {
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
      await onSleep();
    },
  };
}

function deps(clock = steppingClock(Date.now())) {
  return {
    ledger: fx.ledger,
    fleet: async () =>
      readFleetState(buildPauseControls(fx.redis, await resolveAccounts(fx.redis, fx.prefix, undefined))),
    clock,
    queuePrefix: fx.prefix,
  };
}

/** One row in each state, two archived (8 credits each), a budget with one row waiting for it. */
async function mixedBatch(batch: string): Promise<void> {
  const ids = ["q1", "q2", "s", "g", "a", "d1", "d2", "f", "c"];
  await fx.ledger.addRows(
    batch,
    ids.map((id) => newRow(id)),
    { budget: 24, file: "prompts.csv" },
  );
  await moveRow(fx.ledger, batch, "s", "submitted");
  await moveRow(fx.ledger, batch, "g", "generating");
  await moveRow(fx.ledger, batch, "a", "archiving");
  await moveRow(fx.ledger, batch, "d1", "archived", { spent: 8 });
  await moveRow(fx.ledger, batch, "d2", "archived", { spent: 8 });
  await moveRow(fx.ledger, batch, "f", "failed");
  await moveRow(fx.ledger, batch, "c", "cancelled");
  expect(await fx.ledger.reserveBudget(batch, "q1", 8)).toBe("reserved");
  expect(await fx.ledger.reserveBudget(batch, "q2", 8)).toBe("over-budget");
  await fx.ledger.transition(batch, "s", { incr: { uncertain: 1 } });
}

describe("status", () => {
  it("--json of a batch gives every state's count, the credits, the budget and the fleet's pause", async () => {
    await mixedBatch("b1");
    const apiKey = fakeApiKey();
    apiKeys.push(apiKey);
    await registerAccount(fx.redis, fx.prefix, accountId(apiKey));
    await new FleetPause(fx.redis, { accountId: accountId(apiKey) }).pause("manual", "night shift");

    const out = new Collector();
    expect(await runStatus({ ...deps(), out }, { batch: "b1", json: true })).toBe(0);
    const json = JSON.parse(out.text());
    expect(Object.keys(json).slice(0, CONTRACT_KEYS.length)).toEqual(CONTRACT_KEYS);
    expect(json).toMatchObject({
      batch: "b1",
      total: 9,
      queued: 2,
      submitted: 1,
      generating: 1,
      archiving: 1,
      archived: 2,
      failed: 1,
      cancelled: 1,
      waitingBudget: 1,
      uncertain: 1,
      creditsEstimated: 72,
      creditsReserved: 8,
      creditsSpent: 16,
      budget: 24,
      finished: false,
      file: "prompts.csv",
      paused: { reason: "night shift", kind: "manual", accountId: accountId(apiKey) },
      accounts: [{ accountId: accountId(apiKey), paused: { reason: "night shift" } }],
    });
    expect(new Date(json.paused.since).toISOString()).toBe(json.paused.since);
    expect(json.oldestUnarchived).toMatchObject({ rowId: "a" });
  });

  it("the text of a batch shows the counts, credits, waiting rows and the pause", async () => {
    await mixedBatch("b1");
    const out = new Collector();
    await runStatus({ ...deps(), out }, { batch: "b1" });
    const text = out.text();
    expect(text).toContain("2/9 archived · 1 failed · 1 cancelled · 3 in progress · 2 queued");
    expect(text).toContain("credits: estimated 72, reserved 8, spent 16; budget 24");
    expect(text).toContain("waiting for budget: 1 rows");
    expect(text).toContain("uncertain submits (maybe paid twice): 1");
    expect(text).toContain("no KIE account known");
  });

  it("without a batch: one line per batch, and the fleet's state; --json lists them all", async () => {
    await mixedBatch("b1");
    await fx.ledger.addRows("b2", [newRow("x")]);
    await moveRow(fx.ledger, "b2", "x", "archived");

    const text = new Collector();
    await runStatus({ ...deps(), out: text }, {});
    const lines = text.lines();
    expect(lines[0]).toMatch(/^BATCH\s+ROWS\s+QUEUED\s+ACTIVE\s+ARCHIVED\s+FAILED\s+CANCELLED/);
    expect(lines.filter((l) => /^b[12]\s/.test(l))).toHaveLength(2);
    expect(lines.find((l) => l.startsWith("b2"))).toContain("finished");
    expect(lines.at(-1)).toMatch(/^fleet: /);

    const json = new Collector();
    await runStatus({ ...deps(), out: json }, { json: true });
    const all = JSON.parse(json.text());
    expect(all.paused).toBeNull();
    expect(all.batches.map((b: { batch: string }) => b.batch).sort()).toEqual(["b1", "b2"]);
    expect(all.batches.find((b: { batch: string }) => b.batch === "b2")).toMatchObject({
      total: 1,
      archived: 1,
      finished: true,
    });
  });

  it("the oldest finished-but-unarchived image shows its time left, and a WARNING once older than 24 h", async () => {
    const completedAt = Date.UTC(2025, 0, 1);
    await fx.ledger.addRows("b1", [newRow("old"), newRow("new")]);
    await moveRow(fx.ledger, "b1", "new", "archiving", { completedAt: completedAt + HOUR });
    await moveRow(fx.ledger, "b1", "old", "archiving", { completedAt });

    const early = await readBatchStatus(deps(steppingClock(completedAt + 2 * HOUR)), "b1");
    expect(early.oldestUnarchived).toEqual({
      rowId: "old",
      completedAt: new Date(completedAt).toISOString(),
      expiresAt: new Date(completedAt + FILE_LIFETIME_MS).toISOString(),
      ageMs: 2 * HOUR,
      timeLeftMs: FILE_LIFETIME_MS - 2 * HOUR,
      warning: false,
    });

    const out = new Collector();
    await runStatus({ ...deps(steppingClock(completedAt + 25 * HOUR)), out }, { batch: "b1" });
    expect(out.text()).toContain("row old, finished 2025-01-01T00:00:00.000Z (1d 1h ago), 12d 23h left");
    expect(out.text()).toMatch(/WARNING: row old finished 1d 1h ago and is not archived yet/);
    const json = await readBatchStatus(deps(steppingClock(completedAt + 25 * HOUR)), "b1");
    expect(json.oldestUnarchived).toMatchObject({ rowId: "old", warning: true });
  });

  it("--wait resolves 0 when every row ends archived or cancelled, without sleeping", async () => {
    await fx.ledger.addRows("b1", [newRow("a"), newRow("b"), newRow("c")]);
    const steps = [
      () => moveRow(fx.ledger, "b1", "a", "archived"),
      () => moveRow(fx.ledger, "b1", "b", "cancelled"),
      () => moveRow(fx.ledger, "b1", "c", "archived"),
    ];
    let ticks = 0;
    const clock = steppingClock(Date.now(), async () => {
      await steps[ticks++]?.();
    });
    const { code, status } = await waitForBatch(deps(clock), "b1", { intervalMs: 1_000 });
    expect(code).toBe(0);
    expect(ticks).toBe(3);
    expect(status).toMatchObject({ archived: 2, cancelled: 1, finished: true });
  });

  it("--wait resolves 3 when any row failed, and the command prints the final picture", async () => {
    await fx.ledger.addRows("b1", [newRow("a"), newRow("b")]);
    const steps = [
      () => moveRow(fx.ledger, "b1", "a", "archived"),
      () => moveRow(fx.ledger, "b1", "b", "failed"),
    ];
    let ticks = 0;
    const clock = steppingClock(Date.now(), async () => {
      await steps[ticks++]?.();
    });
    const out = new Collector();
    expect(await runStatus({ ...deps(clock), out }, { batch: "b1", wait: true, json: true })).toBe(3);
    expect(JSON.parse(out.text())).toMatchObject({ archived: 1, failed: 1, finished: true });
  });

  it("--wait on an interrupted wait resolves 130, and an empty or finished batch returns at once", async () => {
    await fx.ledger.addRows("b1", [newRow("a")]);
    const controller = new AbortController();
    const clock = steppingClock(Date.now(), async () => controller.abort());
    expect((await waitForBatch(deps(clock), "b1", { signal: controller.signal })).code).toBe(130);

    await moveRow(fx.ledger, "b1", "a", "archived");
    const never = steppingClock(Date.now(), async () => {
      throw new Error("a finished batch must not wait");
    });
    expect((await waitForBatch(deps(never), "b1")).code).toBe(0);
  });

  it("--watch without a terminal prints a plain line per change and ends when the batch finishes", async () => {
    await fx.ledger.addRows("b1", [newRow("a"), newRow("b")]);
    const steps = [
      async () => {},
      () => moveRow(fx.ledger, "b1", "a", "archived"),
      () => moveRow(fx.ledger, "b1", "b", "archived"),
    ];
    let ticks = 0;
    const clock = steppingClock(Date.UTC(2025, 0, 1), async () => {
      await steps[ticks++]?.();
    });
    const out = new Collector({ isTTY: false });
    expect(await runStatus({ ...deps(clock), out }, { batch: "b1", watch: true })).toBe(0);
    const progress = out.lines().filter((l) => l.includes("b1: "));
    expect(progress).toHaveLength(3);
    expect(progress[0]).toMatch(/^2025-01-01T00:00:00.000Z b1: 0\/2 archived/);
    expect(progress[2]).toContain("b1: 2/2 archived");
    expect(out.text()).not.toContain("\x1b[");
  });

  it("--watch on a terminal redraws progress bars in place", async () => {
    await fx.ledger.addRows("b1", [newRow("a"), newRow("b")]);
    const steps = [
      () => moveRow(fx.ledger, "b1", "a", "archived"),
      () => moveRow(fx.ledger, "b1", "b", "archived"),
    ];
    let ticks = 0;
    const clock = steppingClock(Date.now(), async () => {
      await steps[ticks++]?.();
    });
    const out = new Collector({ isTTY: true, columns: 200 });
    await runStatus({ ...deps(clock), out }, { batch: "b1", watch: true });
    const text = out.text();
    expect(text).toContain("[███████████████░░░░░░░░░░░░░░░]");
    expect(text).toContain("[██████████████████████████████]");
    expect(text.match(/\x1b\[\d+F\x1b\[J/g)).toHaveLength(2);
  });

  it("an unknown batch is an unknown_batch error naming the batches there are", async () => {
    await fx.ledger.addRows("real", [newRow("a")]);
    const error = await runStatus({ ...deps(), out: new Collector() }, { batch: "typo" }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpsError);
    expect(error).toMatchObject({ code: "unknown_batch", exitCode: 2 });
    expect((error as Error).message).toContain('unknown batch "typo"');
    expect((error as Error).message).toContain("known: real");
    await expect(runStatus({ ...deps(), out: new Collector() }, { wait: true })).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });
});
