import { describe, expect, it } from "vitest";
import { accountId } from "../../src/fleet/account.js";
import { InFlight } from "../../src/fleet/in-flight.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";
import { type ManualClock, manualClock } from "../helpers/fleet-redis.js";

const accounts = fleetAccounts();

/** `n` workers of one fresh account, each on its own connection; with `clock`, their scripts read it. */
function workers(n: number, staleAfterMs?: number, clock?: ManualClock): InFlight[] {
  const apiKey = accounts.apiKey();
  return Array.from({ length: n }, () => {
    const redis = accounts.connect();
    return new InFlight(redis, {
      accountId: accountId(apiKey),
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
});
