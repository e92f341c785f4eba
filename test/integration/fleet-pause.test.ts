import type { Redis } from "ioredis";
import { describe, expect, it, vi } from "vitest";
import { FleetBackoff } from "../../src/fleet/fleet-backoff.js";
import { createFleet, createFleetPort, type Fleet } from "../../src/fleet/index.js";
import { LATE_CREATE_MS } from "../../src/fleet/port.js";
import type { FleetPort } from "../../src/worker/ports.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";
import { accountKeys, type ManualClock, manualClock } from "../helpers/fleet-redis.js";

const accounts = fleetAccounts();

/** Two workers of one account, each on its own connection; with `clock`, their scripts read it. */
function twoWorkers(clock?: ManualClock): [Fleet, Fleet, [Redis, Redis]] {
  const apiKey = accounts.apiKey();
  const a = accounts.connect();
  const b = accounts.connect();
  const options = clock
    ? { deployment: "test", apiKey, clock, scriptClock: clock }
    : { deployment: "test", apiKey };
  return [createFleet(a, options), createFleet(b, options), [a, b]];
}

/** The second of two workers on a manual clock, its create window one slot in 2 s (no margin), and its fleet port. */
async function oneSlotPort() {
  const clock = manualClock();
  const [, b] = twoWorkers(clock);
  await b.createLimiter.configureRate(1, 2_000);
  return { clock, b, port: createFleetPort(b, { maxInFlight: 0, pollRatePerSec: 10 }) };
}

describe("fleet pause", () => {
  it("a worker's recent open gate is no older than asked, and the read before a create always sees a pause", async () => {
    const [a, b] = twoWorkers();
    const settings = { maxInFlight: 0, pollRatePerSec: 10 };
    const port = createFleetPort(b, settings);
    expect(await port.readGate()).toMatchObject({ paused: null, backoffMs: 0 });
    await a.pause.pause("manual", "operator");
    // Within the age asked, the open read stands (the create's own read below stops it)...
    expect((await port.recentGate!(60_000)).paused).toBeNull();
    // ...but not past it, and the read right before a create is always fresh.
    expect((await port.recentGate!(0)).paused?.kind).toBe("manual");
    expect((await port.readGate()).paused?.kind).toBe("manual");
    // Once a read found the gate closed, no recent open answer is given, whatever the age.
    expect((await port.recentGate!(60_000)).paused?.kind).toBe("manual");
    await a.pause.resume();
  });

  it("a pause set by one worker stops every worker of the account, and resume clears it", async () => {
    const [a, b] = twoWorkers();
    expect(await b.pause.get()).toBeNull();

    const { isNew, state } = await a.pause.pause("out-of-credits", "402: credits insufficient");
    expect(isNew).toBe(true);
    const seen = await b.pause.get();
    expect(seen).toEqual(state);
    expect(seen).toMatchObject({ kind: "out-of-credits", reason: "402: credits insufficient" });
    expect(Math.abs(seen!.since - Date.now())).toBeLessThan(5_000);
    expect(seen!.nextProbeAt! - seen!.since).toBe(60_000);
    expect((await b.readGate()).paused).toEqual(state);

    expect(await b.pause.resume()).toBe(true);
    expect(await a.pause.get()).toBeNull();
    expect(await a.readGate()).toEqual({ paused: null, backoffMs: 0, backoffSet: false });
    expect(await a.pause.resume()).toBe(false);
  });

  it("of 10 workers meeting the same 402 at once, exactly one starts the pause", async () => {
    const [a, b] = twoWorkers();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).pause.pause("out-of-credits", `worker ${i}`)),
    );
    expect(results.filter((r) => r.isNew)).toHaveLength(1);
    const winner = results.find((r) => r.isNew)!;
    expect(results.every((r) => r.state.reason === winner.state.reason)).toBe(true);
  });

  it("an operator's pause outranks automatic ones, and a probe cannot lift it", async () => {
    const [a, b] = twoWorkers();
    await a.pause.pause("usage-cap", "433");
    expect((await b.pause.pause("manual", "maintenance window")).isNew).toBe(true);
    const late = await a.pause.pause("out-of-credits", "402 from a request already on the wire");
    expect(late).toMatchObject({ isNew: false, state: { kind: "manual", reason: "maintenance window" } });
    expect((await a.pause.pause("bad-key", "401")).isNew).toBe(false);

    // A successful probe resumes only its own kind.
    expect(await a.pause.resume("usage-cap")).toBe(false);
    expect((await b.pause.get())?.kind).toBe("manual");
    // `kie-batch resume` lifts anything.
    expect(await b.pause.resume()).toBe(true);

    // A bad key outranks a credit pause: only an operator may end it.
    await a.pause.pause("out-of-credits", "402");
    expect(await b.pause.pause("bad-key", "401: key rejected")).toMatchObject({
      isNew: true,
      state: { kind: "bad-key" },
    });
    expect((await b.pause.get())?.nextProbeAt).toBeUndefined();
    expect(await a.pause.claimProbe()).toBeNull();
  });

  it("a due probe goes to exactly one of 10 concurrent callers, then waits an interval", async () => {
    const clock = manualClock();
    const [a, b] = twoWorkers(clock);
    await a.pause.pause("usage-cap", "433", { probeAfterMs: 0, probeEveryMs: 300 });

    const claims = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).pause.claimProbe()),
    );
    const winners = claims.filter((c) => c !== null);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ kind: "usage-cap", probeEveryMs: 300 });
    expect(await b.pause.claimProbe()).toBeNull();

    clock.advance(299);
    expect(await a.pause.claimProbe()).toBeNull();
    clock.advance(1);
    const next = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).pause.claimProbe()));
    expect(next.filter((c) => c !== null)).toHaveLength(1);

    // The probe succeeded: its winner lifts the pause it was probing.
    expect(await a.pause.resume("usage-cap")).toBe(true);
    expect(await b.pause.claimProbe()).toBeNull();
  });

  it("leaves the API key itself nowhere in Redis", async () => {
    const apiKey = accounts.apiKey();
    const redis = accounts.connect();
    const fleet = createFleet(redis, { deployment: "test", apiKey });
    await fleet.pause.pause("bad-key", "401");
    await fleet.backoff.hit("rate-limited");
    const keys = await accountKeys(redis, apiKey);
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(key).not.toContain(apiKey);
      expect(JSON.stringify(await redis.hgetall(key))).not.toContain(apiKey);
    }
  });
});

describe("fleet backoff", () => {
  it("a 429 backs off every worker; hits of one burst count once; the next hit after it grows it", async () => {
    const clock = manualClock();
    const [a, b, connections] = twoWorkers(clock);
    // A short schedule (100 ms, 200 ms, ...) in place of fleetBackoff's 2 s, 4 s, ...
    const [ba, bb] = connections.map(
      (redis) =>
        new FleetBackoff(redis, {
          accountId: a.accountId,
          schedule: (n) => 100 * 2 ** (n - 1),
          scriptClock: clock,
        }),
    ) as [FleetBackoff, FleetBackoff];

    const burst = await Promise.all([ba.hit("rate-limited"), bb.hit("rate-limited"), ba.hit("rate-limited")]);
    expect(burst.filter((h) => h.isNew)).toHaveLength(1);
    expect(burst.every((h) => h.consecutive === 1 && h.kind === "rate-limited")).toBe(true);
    const remaining = await bb.remaining();
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(100);
    expect((await b.readGate()).backoffMs).toBeGreaterThan(0);

    clock.advance(remaining - 1);
    expect(await ba.remaining()).toBe(1);
    clock.advance(1);
    expect(await ba.remaining()).toBe(0);
    expect(await ba.get()).toBeNull();
    const second = await bb.hit("rate-limited");
    expect(second).toMatchObject({ isNew: true, consecutive: 2 });
    expect(second.remainingMs).toBeGreaterThan(100);
    expect(second.remainingMs).toBeLessThanOrEqual(200);

    // A success clears it: the next 429 starts at the first step again.
    await ba.clear();
    expect(await bb.remaining()).toBe(0);
    expect(await bb.hit("rate-limited")).toMatchObject({ isNew: true, consecutive: 1 });
  });

  it("uses the fleet schedule by default: 2 s for a first 429, 30 s for a first 455, never shortened", async () => {
    const [a, b] = twoWorkers();
    const first = await a.backoff.hit("rate-limited");
    expect(first.remainingMs).toBeGreaterThan(1_900);
    expect(first.remainingMs).toBeLessThanOrEqual(2_000);

    const maintenance = await b.backoff.hit("maintenance");
    expect(maintenance).toMatchObject({ isNew: true, kind: "maintenance", consecutive: 1 });
    expect(maintenance.remainingMs).toBeGreaterThan(29_000);

    // A 429 inside a longer maintenance backoff changes nothing.
    const inside = await a.backoff.hit("rate-limited");
    expect(inside).toMatchObject({ isNew: false, kind: "maintenance", untilMs: maintenance.untilMs });
    expect(await b.backoff.get()).toMatchObject({ kind: "maintenance", consecutive: 1 });
  });
});

describe("worker port", () => {
  it("adapts the fleet to the stages' FleetPort", async () => {
    const [a, b] = twoWorkers();
    const port: FleetPort = createFleetPort(a, { maxInFlight: 1, pollRatePerSec: 20 });
    const other: FleetPort = createFleetPort(b, { maxInFlight: 1, pollRatePerSec: 20 });

    expect(await port.pause("usage-cap", "433", { probeAfterMs: 0 })).toBe(true);
    expect(await other.pause("usage-cap", "433")).toBe(false);
    expect(await other.getPause()).toMatchObject({ kind: "usage-cap" });
    expect([await port.claimProbe(), await other.claimProbe()]).toEqual([true, false]);
    await other.resume();
    expect(await port.getPause()).toBeNull();

    expect(await port.tryAcquireInFlight("b/1")).toBe(true);
    expect(await other.tryAcquireInFlight("b/2")).toBe(false);
    await port.releaseInFlight("b/1");
    expect(await other.tryAcquireInFlight("b/2")).toBe(true);

    const signal = AbortSignal.timeout(5_000);
    // The gate comes back with the create admission: as it stands then, pause and backoff.
    expect(await port.createSlot(signal)).toEqual({ paused: null, backoffMs: 0, backoffSet: false });
    await other.pause("manual", "operator");
    expect((await port.createSlot(signal))?.paused).toMatchObject({ kind: "manual" });
    await other.resume();
    await other.pollSlot(signal);
    expect((await port.backoff("maintenance")).consecutive).toBe(1);
    expect(await other.backoffRemaining()).toBeGreaterThan(0);
    expect(await port.createSlot(signal)).toMatchObject({ backoffSet: true });
    expect((await port.createSlot(signal))!.backoffMs).toBeGreaterThan(0);
    await other.clearBackoff();
    expect(await port.backoffRemaining()).toBe(0);
  });

  it("a create that leaves 10 ms or more after its slot has the slot moved to when it left; a prompt one is left alone", async () => {
    const { clock, b, port } = await oneSlotPort();
    const prompt = new AbortController().signal;
    await port.createSlot(prompt);
    await port.createLeaving!(prompt);
    // Held the window (no margin in this fleet) from the admission: nothing moved.
    expect(await b.createLimiter.acquire()).toMatchObject({ ok: false, retryInMs: 2_000 });

    clock.advance(2_000);
    const late = new AbortController().signal;
    await port.createSlot(late);
    // 50 ms pass, on this host (the estimate) and on the window's clock (where the move is made).
    await new Promise((resolve) => setTimeout(resolve, LATE_CREATE_MS + 40));
    clock.advance(LATE_CREATE_MS + 40);
    await port.createLeaving!(late);
    expect(await b.createLimiter.acquire()).toMatchObject({ ok: false, retryInMs: 2_000 });
    // Told once: a second call for the same create moves nothing more.
    clock.advance(100);
    await port.createLeaving!(late);
    expect(await b.createLimiter.acquire()).toMatchObject({ ok: false, retryInMs: 1_900 });
  });

  it("a host clock stepped back after the admission does not hide a late create (a stopwatch covers it)", async () => {
    const { clock, b, port } = await oneSlotPort();
    const signal = new AbortController().signal;
    await port.createSlot(signal);
    const realNow = Date.now;
    const stepped = vi.spyOn(Date, "now").mockImplementation(() => realNow() - 1_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, LATE_CREATE_MS + 40));
      clock.advance(LATE_CREATE_MS + 40);
      expect(await port.createLeaving!(signal)).toBe(true);
    } finally {
      stepped.mockRestore();
    }
    // Moved to now: held the whole window from here (unmoved, 50 ms of it would be gone).
    expect(await b.createLimiter.acquire()).toMatchObject({ ok: false, retryInMs: 2_000 });
  });
});
