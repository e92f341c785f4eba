import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { accountId } from "../../src/fleet/account.js";
import { InFlight } from "../../src/fleet/in-flight.js";
import { connect, deleteAccountKeys, fakeApiKey } from "../helpers/fleet-redis.js";

let clients: Redis[] = [];
let apiKeys: string[] = [];

/** `n` workers of one fresh account, each on its own connection. */
function workers(n: number, staleAfterMs?: number): InFlight[] {
  const apiKey = fakeApiKey();
  apiKeys.push(apiKey);
  return Array.from({ length: n }, () => {
    const redis = connect();
    clients.push(redis);
    return new InFlight(redis, { accountId: accountId(apiKey), ...(staleAfterMs ? { staleAfterMs } : {}) });
  });
}

afterEach(async () => {
  const [cleaner] = clients;
  if (cleaner) for (const key of apiKeys) await deleteAccountKeys(cleaner, key);
  await Promise.all(clients.map((c) => c.quit()));
  clients = [];
  apiKeys = [];
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    const [a, b] = workers(2, 500);
    for (const row of ["lost-1", "lost-2", "alive"]) expect(await a!.tryAcquire(`b/${row}`, 3)).toBe(true);
    expect(await b!.tryAcquire("b/new", 3)).toBe(false);

    await sleep(350);
    expect(await a!.touch("b/alive")).toBe(true);
    expect(await a!.touch("b/never-acquired")).toBe(false);
    await sleep(200);

    // lost-1 and lost-2 are over 550 ms old (stale); alive was touched 200 ms ago.
    expect(await b!.count()).toBe(1);
    expect(await b!.tryAcquire("b/new", 3)).toBe(true);
    expect(await b!.tryAcquire("b/new-2", 3)).toBe(true);
    expect(await b!.tryAcquire("b/new-3", 3)).toBe(false);
    expect(await a!.release("b/lost-1")).toBe(false);
  });
});
