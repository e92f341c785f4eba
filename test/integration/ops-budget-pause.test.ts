import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildPauseControls } from "../../src/app/parts.js";
import { stagePauseFlags } from "../../src/bull/pause-flags.js";
import { setBatchBudget } from "../../src/commands/budget.js";
import { pauseSubmissions, resumeSubmissions } from "../../src/commands/pause.js";
import { parseBudget } from "../../src/core/values.js";
import { ArchivePause, accountId, FleetPause } from "../../src/fleet/index.js";
import { registerAccount, requireAccounts, resolveAccounts } from "../../src/report/accounts.js";
import { fleetLines, readFleetState } from "../../src/report/fleet-state.js";
import { deleteAccountKeys, fakeApiKey } from "../helpers/fleet-redis.js";
import { Collector, moveRow, newRow, type OpsFixture, opsFixture } from "./ops-helpers.js";

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

function newKey(): string {
  const key = fakeApiKey();
  apiKeys.push(key);
  return key;
}

describe("budget", () => {
  it("sets a budget and shows reserved and spent against it; `none` removes it", async () => {
    await fx.ledger.addRows(
      "b1",
      ["a", "b", "c"].map((id) => newRow(id)),
    );
    await moveRow(fx.ledger, "b1", "a", "archived", { spent: 8 });
    await fx.ledger.reserveBudget("b1", "b", 8);

    const out = new Collector();
    const after = await setBatchBudget({ ledger: fx.ledger, out }, "b1", parseBudget("20"));
    expect(after.budget).toBe(20);
    expect(out.lines()).toEqual([
      "batch b1: budget 20 credits (was none)",
      "  reserved 8 + spent 8 = 16 (80% of the budget); estimated for the whole batch 24",
      "  below the batch's estimate: some rows may wait for budget",
    ]);
    // The third row no longer fits.
    expect(await fx.ledger.reserveBudget("b1", "c", 8)).toBe("over-budget");

    const tight = new Collector();
    await setBatchBudget({ ledger: fx.ledger, out: tight }, "b1", parseBudget("10"));
    expect(tight.text()).toContain("already over the new budget");
    expect(tight.text()).toContain("1 rows are waiting for budget");

    const none = new Collector();
    const removed = await setBatchBudget({ ledger: fx.ledger, out: none }, "b1", parseBudget("none"));
    expect(removed.budget).toBeUndefined();
    expect(none.lines()[0]).toBe("batch b1: budget removed (was 10)");
    expect(await fx.ledger.reserveBudget("b1", "c", 8)).toBe("no-budget");
  });

  it("refuses a budget that is not a number and an unknown batch", async () => {
    expect(() => parseBudget("lots")).toThrow(/expected a number of credits/);
    expect(() => parseBudget("-5")).toThrow(/expected a number of credits/);
    expect(parseBudget("12.5")).toBe(12.5);
    expect(parseBudget("NONE")).toBeNull();
    await expect(
      setBatchBudget({ ledger: fx.ledger, out: new Collector() }, "ghost", 5),
    ).rejects.toMatchObject({
      code: "unknown_batch",
    });
  });
});

describe("pause and resume", () => {
  it("pause stops every registered account of the prefix with the reason; resume clears it", async () => {
    const keys = [newKey(), newKey()];
    for (const key of keys) await registerAccount(fx.redis, fx.prefix, accountId(key));
    const ids = await requireAccounts(fx.redis, fx.prefix, undefined);
    expect(ids).toEqual(keys.map(accountId).sort());

    const out = new Collector();
    const state = await pauseSubmissions(
      { accounts: buildPauseControls(fx.redis, ids), out },
      "maintenance window",
    );
    expect(state.accounts).toHaveLength(2);
    for (const key of keys) {
      expect(await new FleetPause(fx.redis, { accountId: accountId(key) }).get()).toMatchObject({
        kind: "manual",
        reason: "maintenance window",
      });
    }
    expect(state.paused).toMatchObject({ kind: "manual", reason: "maintenance window" });
    expect(out.text()).toMatch(/account [0-9a-f]{16} PAUSED since \S+ \(manual\): maintenance window/);

    const again = new Collector();
    await pauseSubmissions({ accounts: buildPauseControls(fx.redis, ids), out: again }, "other reason");
    expect(again.text()).toContain("already paused");
    expect(again.text()).toContain("maintenance window");

    const resumed = new Collector();
    const after = await resumeSubmissions({ accounts: buildPauseControls(fx.redis, ids), out: resumed });
    expect(after.paused).toBeNull();
    expect(resumed.text()).toContain("resumed (was paused since");
    expect(resumed.text()).toMatch(/account [0-9a-f]{16} running/);
  });

  it("resume also lifts an automatic pause (a 401 after the key was fixed); KIE_API_KEY picks its own account", async () => {
    const key = newKey();
    const other = newKey();
    await registerAccount(fx.redis, fx.prefix, accountId(other));
    await new FleetPause(fx.redis, { accountId: accountId(key) }).pause(
      "bad-key",
      "KIE refused the API key (401)",
    );
    expect(await resolveAccounts(fx.redis, fx.prefix, key)).toEqual([accountId(key)]);

    const out = new Collector();
    const after = await resumeSubmissions({ accounts: buildPauseControls(fx.redis, [accountId(key)]), out });
    expect(after.paused).toBeNull();
    expect(out.text()).toContain("(bad-key): KIE refused the API key (401)");
    expect(await new FleetPause(fx.redis, { accountId: accountId(key) }).get()).toBeNull();
  });

  it("a disk that fills while archiving is paused for another cause: the archive pause's line says the probe now waits for KIE_ARCHIVE_MIN_FREE too", async () => {
    const pause = new ArchivePause(fx.redis, { queuePrefix: fx.prefix });
    expect(
      await pause.pause("store-unavailable", "the archive store refuses writes (EACCES: permission denied)"),
    ).toBe(true);
    // The full disk's pause finds one in force: it adds its floor, the reason stays the first one's.
    await pause.pause("store-unavailable", "the archive store is full; ...", {
      minFreeBytes: 256 * 1_048_576,
    });
    const line = fleetLines(await readFleetState([], pause)).join("\n");
    expect(line).toContain("EACCES");
    expect(line).toContain("the store probe waits for KIE_ARCHIVE_MIN_FREE free (256.0 MiB)");
  });

  it("a store refusing the SDK's checksums while archiving is paused for another cause: the archive pause's line names the setting its probe now waits for", async () => {
    const pause = new ArchivePause(fx.redis, { queuePrefix: `${fx.prefix}-checksums` });
    expect(await pause.pause("store-unavailable", "the archive store refuses writes (AccessDenied)")).toBe(
      true,
    );
    await pause.pause("store-unavailable", "the archive store refused the SDK's checksums", {
      probeMultipart: true,
    });
    const line = fleetLines(await readFleetState([], pause)).join("\n");
    expect(line).toContain("AccessDenied");
    expect(line).toContain(
      "the store refused the AWS SDK's request checksums too: the store probe holds until AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED is set",
    );
    await pause.resume("store-unavailable");
  });

  it("a stage queue paused in BullMQ (bull-board's pause button) is named by the fleet state, and resume lifts it", async () => {
    await fx.queues.queues.submit.pause();
    const state = await readFleetState([], undefined, fx.queues.queues);
    expect(state.queuesPaused).toEqual(["submit"]);
    expect(fleetLines(state).join("\n")).toContain(
      "queue: submit PAUSED in BullMQ (bull-board's pause button)",
    );

    const out = new Collector();
    const after = await resumeSubmissions({ accounts: [], out, stageQueues: fx.queues.queues });
    expect(out.text()).toContain("queue submit: resumed");
    expect(await fx.queues.queues.submit.isPaused()).toBe(false);
    // Read again without the queues (as before): nothing said of them.
    expect(after.queuesPaused).toBeUndefined();
    expect((await readFleetState([], undefined, fx.queues.queues)).queuesPaused).toEqual([]);
  });

  it("status reads the queues' pause flags as BullMQ keeps them, without a Queue (which writes its meta): nothing written", async () => {
    const flags = stagePauseFlags(fx.redis, fx.prefix);
    expect(await flags.submit.isPaused()).toBe(await fx.queues.queues.submit.isPaused());
    await fx.queues.queues.poll.pause();
    expect((await readFleetState([], undefined, flags)).queuesPaused).toEqual(["poll"]);
    await fx.queues.queues.poll.resume();
    expect(await flags.poll.isPaused()).toBe(false);
    // Under a prefix no queue was ever made: read, and no key appears.
    const unused = `${fx.prefix}-typo`;
    expect((await readFleetState([], undefined, stagePauseFlags(fx.redis, unused))).queuesPaused).toEqual([]);
    expect(await fx.redis.keys(`*${unused}*`)).toEqual([]);
  });

  it("with no key and no registered account, pause and resume say what to do", async () => {
    await expect(requireAccounts(fx.redis, fx.prefix, undefined)).rejects.toMatchObject({
      code: "no_account",
      message: expect.stringContaining("set KIE_API_KEY, or start a worker once"),
    });
  });
});
