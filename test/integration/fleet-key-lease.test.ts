/**
 * Workers' holds of their API keys, in Redis: a key's window mapping that every worker must share,
 * and the deployment's live holders, which a worker lacking a task's key waits for.
 */
import { describe, expect, it } from "vitest";
import { accountId } from "../../src/fleet/account.js";
import { KEY_WAIT_TTL_MS, KeyLeases, noteKeyWait, unheldKeyWaits } from "../../src/fleet/key-lease.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";
import { manualClock } from "../helpers/fleet-redis.js";

const accounts = fleetAccounts();

describe("key leases", () => {
  it("a held key is held until its worker closes or its lease runs out, per deployment", async () => {
    const redis = accounts.connect();
    const id = accountId(accounts.apiKey());
    const clock = manualClock();
    const lease = (deployment: string, worker: string) =>
      new KeyLeases(redis, [{ id }], { deployment, worker, ttlMs: 60_000, scriptClock: clock });
    const w1 = lease("dep-a", "w1");
    const w2 = lease("dep-a", "w2");
    const other = lease("dep-b", "w3");
    expect(await w1.held(id, "poll")).toBe(false);
    expect(await w1.claim()).toEqual([]);
    expect(await w2.claim()).toEqual([]);
    expect(await other.held(id, "poll")).toBe(false); // another deployment's worker does not poll these tasks
    await w1.close();
    expect(await w2.held(id, "poll")).toBe(true);
    await w2.close();
    expect(await w1.held(id, "poll")).toBe(false);
    // A worker that died holds the key until its lease runs out.
    expect(await w1.claim()).toEqual([]);
    clock.advance(59_999);
    expect(await w2.held(id, "poll")).toBe(true);
    clock.advance(1);
    expect(await w2.held(id, "poll")).toBe(false);
  });

  it("a worker is a holder for the stages it runs: one that does not poll is no holder for polls (a poll job waiting for one would wait forever), yet its key's window mapping is checked and kept", async () => {
    const redis = accounts.connect();
    const id = accountId(accounts.apiKey());
    const submitter = new KeyLeases(redis, [{ id, account: "team" }], {
      deployment: "dep-a",
      worker: "s1",
      ttlMs: 60_000,
      roles: [],
    });
    expect(await submitter.claim()).toEqual([]);
    expect(await submitter.held(id, "poll")).toBe(false);
    expect(await submitter.held(id, "archive")).toBe(false);
    // A worker that only archives holds the key for archive jobs (an expired URL's refresh), not for polls.
    const archiver = new KeyLeases(redis, [{ id, account: "team" }], {
      deployment: "dep-a",
      worker: "a1",
      ttlMs: 60_000,
      roles: ["archive"],
    });
    expect(await archiver.claim()).toEqual([]);
    expect(await submitter.held(id, "archive")).toBe(true);
    expect(await submitter.held(id, "poll")).toBe(false);
    await archiver.close();
    expect(await submitter.held(id, "archive")).toBe(false);
    // Its mapping stands: a worker counting the key in another window is refused.
    const own = new KeyLeases(redis, [{ id }], { deployment: "dep-a", worker: "p1", ttlMs: 60_000 });
    expect(await own.claim()).toHaveLength(1);
    // A poller of the same mapping is a holder.
    const poller = new KeyLeases(redis, [{ id, account: "team" }], {
      deployment: "dep-a",
      worker: "p2",
      ttlMs: 60_000,
    });
    expect(await poller.claim()).toEqual([]);
    expect(await submitter.held(id, "poll")).toBe(true);
    // By default a worker runs every stage: a holder for both.
    expect(await submitter.held(id, "archive")).toBe(true);
    await poller.close();
    await submitter.close();
  });

  it("a key is in one window for every worker: another mapping is refused, named by accounts, until the stored one expires", async () => {
    const redis = accounts.connect();
    const id = accountId(accounts.apiKey());
    const team = new KeyLeases(redis, [{ id, account: "team" }], {
      deployment: "dep-a",
      worker: "w1",
      ttlMs: 60_000,
    });
    const own = new KeyLeases(redis, [{ id }], { deployment: "dep-b", worker: "w2", ttlMs: 60_000 });
    expect(await team.claim()).toEqual([]);
    expect(await own.claim()).toEqual([{ id, mine: "a window of its own", stored: 'account "team"' }]);
    // Refused: not listed as a holder.
    expect(await own.held(id, "poll")).toBe(false);
    await team.close();
    // Its mapping expires (no worker refreshes it): gone, as its PX would make it.
    expect(await redis.pttl(`kie-batch:acct:{${id}}:window`)).toBeGreaterThan(59_000);
    await redis.del(`kie-batch:acct:{${id}}:window`);
    expect(await own.claim()).toEqual([]);
    expect(await redis.get(`kie-batch:acct:{${id}}:window`)).toBe("own");
    await own.close();
  });

  it("a key rows wait for is named while no live worker of the deployment holds it, and for an hour after the last wait", async () => {
    const redis = accounts.connect();
    const [waited, quiet] = [accountId(accounts.apiKey()), accountId(accounts.apiKey())];
    const clock = manualClock();
    const waits = (deployment = "dep-a") => unheldKeyWaits(redis, deployment, [waited, quiet], clock);
    expect(await waits()).toEqual([]);
    await noteKeyWait(redis, "dep-a", waited, 1_234, "poll");
    expect(await waits()).toEqual([{ id: waited, role: "poll", lastAt: 1_234 }]);
    // Another deployment's rows do not wait for it.
    expect(await waits("dep-b")).toEqual([]);
    // A live holder will take those polls: nothing to name.
    const holder = new KeyLeases(redis, [{ id: waited }], {
      deployment: "dep-a",
      worker: "w1",
      ttlMs: 60_000,
      scriptClock: clock,
    });
    expect(await holder.claim()).toEqual([]);
    expect(await waits()).toEqual([]);
    await holder.close();
    expect(await waits()).toHaveLength(1);
    // Archive jobs wait for it too: a worker that polls with it is no holder for them.
    await noteKeyWait(redis, "dep-a", waited, 2_345, "archive");
    const poller = new KeyLeases(redis, [{ id: waited }], {
      deployment: "dep-a",
      worker: "p1",
      ttlMs: 60_000,
      roles: ["poll"],
      scriptClock: clock,
    });
    expect(await poller.claim()).toEqual([]);
    expect(await waits()).toEqual([{ id: waited, role: "archive", lastAt: 2_345 }]);
    await poller.close();
    expect(await waits()).toHaveLength(2);
    // The note lasts 15 minutes after the last wait.
    const ttl = await redis.pttl((await redis.keys(`*${waited}*waiting*`))[0]!);
    expect(ttl).toBeGreaterThan(KEY_WAIT_TTL_MS - 5_000);
    expect(ttl).toBeLessThanOrEqual(KEY_WAIT_TTL_MS);
  });
});
