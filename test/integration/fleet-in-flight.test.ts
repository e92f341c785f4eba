import { describe, expect, it } from "vitest";
import { accountId, accountKey } from "../../src/fleet/account.js";
import { InFlight } from "../../src/fleet/in-flight.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";
import { type ManualClock, manualClock } from "../helpers/fleet-redis.js";

const accounts = fleetAccounts();

/**
 * `n` workers of one fresh account, each on its own connection; with `clock`, their scripts read
 * it; `deployments`: each worker's (its KIE_QUEUE_PREFIX; "test" for all by default).
 */
function workers(n: number, staleAfterMs?: number, clock?: ManualClock, deployments?: string[]): InFlight[] {
  const apiKey = accounts.apiKey();
  return Array.from({ length: n }, (_, i) => {
    const redis = accounts.connect();
    return new InFlight(redis, {
      accountId: accountId(apiKey),
      deployment: deployments?.[i] ?? "test",
      ...(staleAfterMs ? { staleAfterMs } : {}),
      ...(clock ? { scriptClock: clock } : {}),
    });
  });
}

describe("in-flight cap", () => {
  it("of 30 concurrent submitters on 3 connections, exactly 5 get a slot; a release lets one more in", async () => {
    const fleet = workers(3);
    const granted = await Promise.all(
      Array.from({ length: 30 }, (_, i) => fleet[i % 3]!.tryAcquire(`batch/row-${i}`, 5)),
    );
    expect(granted.filter(Boolean)).toHaveLength(5);
    expect(await fleet[1]!.count()).toBe(5);

    const holder = granted.indexOf(true);
    const waiter = granted.indexOf(false);
    expect(await fleet[2]!.tryAcquire(`batch/row-${waiter}`, 5)).toBe(false);
    expect(await fleet[0]!.release(`batch/row-${holder}`)).toBe(true);
    expect(await fleet[0]!.release(`batch/row-${holder}`)).toBe(false);
    expect(await fleet[2]!.tryAcquire(`batch/row-${waiter}`, 5)).toBe(true);
    expect(await fleet[2]!.tryAcquire("batch/another", 5)).toBe(false);
  });

  it("a job that already holds a slot keeps it on a retried submit, even at the cap", async () => {
    const [a, b] = workers(2);
    expect(await a!.tryAcquire("b/1", 2)).toBe(true);
    expect(await a!.tryAcquire("b/2", 2)).toBe(true);
    expect(await b!.tryAcquire("b/1", 2)).toBe(true);
    expect(await b!.count()).toBe(2);
  });

  it("without a cap (0) every job gets a slot and is still counted", async () => {
    const [a] = workers(1);
    const granted = await Promise.all(Array.from({ length: 12 }, (_, i) => a!.tryAcquire(`b/${i}`, 0)));
    expect(granted.every(Boolean)).toBe(true);
    expect(await a!.count()).toBe(12);
  });

  it("slots of a crashed worker are recovered once stale; touched ones survive", async () => {
    // Stale after 50 s of script time (the set's TTL, on Redis's own clock, never runs out here).
    const clock = manualClock();
    const [a, b] = workers(2, 50_000, clock);
    for (const row of ["lost-1", "lost-2", "alive"]) expect(await a!.tryAcquire(`b/${row}`, 3)).toBe(true);
    expect(await b!.tryAcquire("b/new", 3)).toBe(false);

    clock.advance(35_000);
    expect(await a!.touch("b/alive")).toBe(true);
    expect(await a!.touch("b/never-acquired")).toBe(false);
    clock.advance(14_999);
    expect(await b!.count()).toBe(3); // a millisecond short of stale
    clock.advance(1);

    // lost-1 and lost-2 are 50 s old (stale); alive was touched 15 s ago.
    expect(await b!.count()).toBe(1);
    expect(await b!.tryAcquire("b/new", 3)).toBe(true);
    expect(await b!.tryAcquire("b/new-2", 3)).toBe(true);
    expect(await b!.tryAcquire("b/new-3", 3)).toBe(false);
    expect(await a!.release("b/lost-1")).toBe(false);
  });

  it("two deployments sharing the key hold their own slots: one's cancel or purge frees none of the other's", async () => {
    // Staging and production, each with a batch named "prompts" (the name defaults to the file's).
    const [prod, staging] = workers(2, undefined, undefined, ["prod", "staging"]);
    expect(await prod!.tryAcquire("prompts/7", 3)).toBe(true);
    expect(await prod!.tryAcquire("prompts/8/r1", 3)).toBe(true);
    expect(await staging!.tryAcquire("prompts/7", 3)).toBe(true);
    expect(await prod!.count()).toBe(3);

    expect(await staging!.release("prompts/7")).toBe(true);
    expect(await staging!.release("prompts/7")).toBe(false);
    expect(await staging!.releaseMany(["prompts/7", "prompts/8/r1"])).toBe(0);
    expect(await staging!.releaseBatch("prompts")).toBe(0);
    expect(await staging!.touch("prompts/8/r1")).toBe(false);
    expect(await prod!.count()).toBe(2);
    // At the cap of 3, staging gets the one slot left, then none.
    expect(await staging!.tryAcquire("prompts/9", 3)).toBe(true);
    expect(await staging!.tryAcquire("prompts/10", 3)).toBe(false);
    expect(await prod!.releaseBatch("prompts")).toBe(2);
    expect(await staging!.releaseBatch("prompts")).toBe(1);
    expect(await prod!.count()).toBe(0);
  });

  it("a slot taken by a version that named it by job key alone is touched and freed by this one", async () => {
    const clock = manualClock();
    const redis = accounts.connect();
    const account = accountId(accounts.apiKey());
    const worker = new InFlight(redis, {
      accountId: account,
      deployment: "test",
      staleAfterMs: 50_000,
      scriptClock: clock,
    });
    const set = accountKey(account, "in-flight");
    const legacy = (...members: string[]) => redis.zadd(set, ...members.flatMap((m) => [clock.now(), m]));
    // Upgraded while three tasks were in flight.
    await legacy("b/old-1", "b/old-2", "b/old-3/r2", "other/old");
    clock.advance(40_000);
    // Polled by this version: the slot stays alive past its first stale time.
    expect(await worker.touch("b/old-1")).toBe(true);
    clock.advance(10_000);
    expect(await worker.count()).toBe(1);
    expect(await worker.release("b/old-1")).toBe(true);
    await legacy("b/old-2", "b/old-3/r2", "other/old");
    expect(await worker.releaseMany(["b/old-2", "b/none"])).toBe(1);
    expect(await worker.releaseBatch("b")).toBe(1);
    expect(await redis.zrange(set, 0, -1)).toEqual(["other/old"]);
  });

  it("a job frees the slot an earlier version named by job key alone only when it holds none of its own", async () => {
    // Production still runs the earlier version on the key; staging, upgraded, has a batch of the same name.
    const redis = accounts.connect();
    const account = accountId(accounts.apiKey());
    const staging = new InFlight(redis, { accountId: account, deployment: "staging" });
    const set = accountKey(account, "in-flight");
    await redis.zadd(set, Date.now(), "prompts/7");
    expect(await staging.tryAcquire("prompts/7", 0)).toBe(true);
    expect(await staging.release("prompts/7")).toBe(true);
    expect(await staging.releaseMany(["prompts/8"])).toBe(0);
    expect(await redis.zrange(set, 0, -1)).toEqual(["prompts/7"]);
    // With none of its own (a job it submitted before its upgrade), the job key alone is freed.
    expect(await staging.release("prompts/7")).toBe(true);
    expect(await redis.zcard(set)).toBe(0);
  });
});
