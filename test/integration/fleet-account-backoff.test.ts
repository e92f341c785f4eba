/**
 * KIE limits per account: a 429 (or 455) met by one key of an account backs off every key of that
 * account, while a pause (401, 402, 433) stays the key's own.
 */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { sharedAccountId } from "../../src/fleet/account.js";
import { accountKeyPattern, createFleet, createFleetPort } from "../../src/fleet/index.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";

const accounts = fleetAccounts();
const named: string[] = [];

afterEach(async () => {
  const redis = accounts.connect();
  for (const name of named.splice(0)) {
    const keys = await redis.keys(accountKeyPattern(sharedAccountId(name)));
    if (keys.length > 0) await redis.del(...keys);
  }
});

/** Two keys of one (fresh) account, a key of another, each a worker's port on its own connection. */
function threeKeys() {
  const account = `acct-${randomBytes(6).toString("hex")}`;
  named.push(account);
  const settings = { maxInFlight: 0, pollRatePerSec: 10 };
  const [k1, k2, k3] = [accounts.apiKey(), accounts.apiKey(), accounts.apiKey()];
  const fleets = [
    createFleet(accounts.connect(), { deployment: "test", apiKey: k1, account }),
    createFleet(accounts.connect(), { deployment: "test", apiKey: k2, account }),
    createFleet(accounts.connect(), { deployment: "test", apiKey: k3 }),
  ] as const;
  return { fleets, ports: fleets.map((fleet) => createFleetPort(fleet, settings)) };
}

describe("an account's backoff", () => {
  it("a 429 on one key of an account backs off its other key too, not a key of another account", async () => {
    const { fleets, ports } = threeKeys();
    const [p1, p2, p3] = ports as [(typeof ports)[0], (typeof ports)[0], (typeof ports)[0]];
    expect(fleets[0].windowId).toBe(fleets[1].windowId);
    const { remainingMs } = await p1.backoff("rate-limited");
    expect(remainingMs).toBeGreaterThan(0);
    expect((await p2.readGate()).backoffMs).toBeGreaterThan(0);
    expect(await p2.backoffRemaining()).toBeGreaterThan(0);
    expect(await p1.readGate()).toMatchObject({ backoffMs: expect.any(Number), backoffSet: true });
    expect((await p1.readGate()).backoffMs).toBeGreaterThan(0);
    expect(await p3.readGate()).toEqual({ paused: null, backoffMs: 0, backoffSet: false });
    // A success of either key clears the account's backoff.
    await p2.clearBackoff();
    expect(await p1.readGate()).toMatchObject({ backoffMs: 0, backoffSet: false });
  });

  it("a 455 (maintenance) backs off the account too", async () => {
    const { ports } = threeKeys();
    await ports[1]!.backoff("maintenance");
    expect((await ports[0]!.readGate()).backoffMs).toBeGreaterThan(0);
    expect((await ports[2]!.readGate()).backoffMs).toBe(0);
  });

  it("a pause (433) stays the key's own: the account's other key goes on", async () => {
    const { ports } = threeKeys();
    expect(await ports[0]!.pause("usage-cap", "433", {})).toBe(true);
    expect((await ports[0]!.readGate()).paused?.kind).toBe("usage-cap");
    expect(await ports[1]!.readGate()).toEqual({ paused: null, backoffMs: 0, backoffSet: false });
    expect(await ports[2]!.readGate()).toEqual({ paused: null, backoffMs: 0, backoffSet: false });
    // A key of a named account has its pause under its own tag, its window under the account's:
    // its create slot brings no gate (the submitter reads it), a key of its own account's does.
    const signal = AbortSignal.timeout(5_000);
    expect(await ports[1]!.createSlot(signal)).toBeUndefined();
    expect(await ports[2]!.createSlot(signal)).toEqual({ paused: null, backoffMs: 0, backoffSet: false });
  });
});
