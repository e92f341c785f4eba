import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import { createFleet, perSecond } from "../../src/fleet/index.js";
import { SlidingWindowLimiter } from "../../src/fleet/rate-limiter.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";
import { accountKeys, manualClock } from "../helpers/fleet-redis.js";
import { type Admission, hammer, maxInAnyWindow } from "../helpers/limiter-hammer.js";

const LIMIT = 5;
const WINDOW_MS = 500;
const RUN_MS = 2_500;
/** Full windows in the run: the most a perfect limiter admits, give or take the last edge. */
const THEORETICAL = (RUN_MS / WINDOW_MS) * LIMIT;

const HAMMER_SCRIPT = fileURLToPath(new URL("../helpers/limiter-hammer-process.ts", import.meta.url));

const accounts = fleetAccounts();
const client = (): Redis => accounts.connect();
const account = (): string => accounts.apiKey();

/** The sliding-window property, on the Redis clock and, with slack for reply latency, on ours. */
function expectWithinLimit(admissions: Admission[]): void {
  expect(
    maxInAnyWindow(
      admissions.map((a) => a.serverTimeUs),
      WINDOW_MS * 1_000,
    ),
  ).toBeLessThanOrEqual(LIMIT);
  expect(
    maxInAnyWindow(
      admissions.map((a) => a.localMs * 1_000),
      (WINDOW_MS - 100) * 1_000,
    ),
  ).toBeLessThanOrEqual(LIMIT);
}

/** Admissions in the first RUN_MS after the first one. */
function throughput(admissions: Admission[]): number {
  const first = Math.min(...admissions.map((a) => a.serverTimeUs));
  return admissions.filter((a) => a.serverTimeUs < first + RUN_MS * 1_000).length;
}

describe("sliding-window create limiter", () => {
  it("admits at most 5 per 500 ms in every sliding window across 3 connections, near full throughput", async () => {
    const apiKey = account();
    const fleets = [client(), client(), client()].map((redis) =>
      createFleet(redis, { deployment: "test", apiKey }),
    );
    await fleets[0]!.createLimiter.configureRate(LIMIT, WINDOW_MS);

    // Two concurrent loops per connection: six contenders for five slots per window.
    const runs = fleets.flatMap((fleet, i) => [
      hammer(fleet.createLimiter, `conn-${i}a`, RUN_MS),
      hammer(fleet.createLimiter, `conn-${i}b`, RUN_MS),
    ]);
    const admissions = (await Promise.all(runs)).flat();

    expectWithinLimit(admissions);
    expect(throughput(admissions)).toBeGreaterThanOrEqual(0.8 * THEORETICAL);
    expect(throughput(admissions)).toBeLessThanOrEqual(THEORETICAL);
  });

  it("holds the limit across two processes, the second started with a different rate", async () => {
    const apiKey = account();
    const fleets = [client(), client()].map((redis) => createFleet(redis, { deployment: "test", apiKey }));
    await fleets[0]!.createLimiter.configureRate(LIMIT, WINDOW_MS);

    const child = spawn(process.execPath, ["--import", "tsx", HAMMER_SCRIPT, apiKey, "2", String(RUN_MS)], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env },
    });
    try {
      let output = "";
      child.stdout.setEncoding("utf8");
      const ready = new Promise<void>((resolve, reject) => {
        child.once("exit", (code) => reject(new Error(`hammer process exited early (${code})`)));
        child.stdout.on("data", (chunk: string) => {
          output += chunk;
          if (output.startsWith("ready\n")) resolve();
        });
      });
      await ready;
      child.stdin.write("go\n");
      const ours = Promise.all(fleets.map((fleet, i) => hammer(fleet.createLimiter, `parent-${i}`, RUN_MS)));
      const [exitCode] = (await once(child, "exit")) as [number];
      expect(exitCode).toBe(0);
      const theirs = JSON.parse(output.slice("ready\n".length)) as Admission[];
      const admissions = [...(await ours).flat(), ...theirs];

      expect(theirs.length).toBeGreaterThan(0);
      expect(admissions.length - theirs.length).toBeGreaterThan(0);
      expectWithinLimit(admissions);
      expect(throughput(admissions)).toBeGreaterThanOrEqual(0.8 * THEORETICAL);
    } finally {
      if (child.exitCode === null) child.kill();
    }
  });

  it("refuses over the limit with retryInMs until the oldest admission leaves the window", async () => {
    const clock = manualClock();
    const limiter = createFleet(client(), {
      deployment: "test",
      apiKey: account(),
      createRate: { limit: 2, windowMs: 4_000 },
      clock,
      scriptClock: clock,
    }).createLimiter;

    const first = await limiter.acquire();
    expect(first.ok).toBe(true);
    clock.advance(1_000);
    expect((await limiter.acquire()).ok).toBe(true);
    clock.advance(500);
    const refused = await limiter.acquire();

    if (refused.ok || !first.ok) throw new Error("expected the third acquire to be refused");
    const expected = 4_000 - (refused.serverTimeUs - first.serverTimeUs) / 1_000;
    expect(refused.retryInMs).toBeGreaterThan(0);
    expect(refused.retryInMs).toBeLessThanOrEqual(4_000);
    expect(Math.abs(refused.retryInMs - expected)).toBeLessThanOrEqual(1);

    clock.advance(refused.retryInMs - 1);
    expect((await limiter.acquire()).ok).toBe(false);
    clock.advance(1);
    expect((await limiter.acquire()).ok).toBe(true);
  });

  it("waitForSlot sleeps on its clock until a slot frees, then is admitted", async () => {
    const clock = manualClock();
    const limiter = createFleet(client(), {
      deployment: "test",
      apiKey: account(),
      createRate: { limit: 1, windowMs: 5_000 },
      clock,
      scriptClock: clock,
    }).createLimiter;
    const first = await limiter.waitForSlot();
    const second = await limiter.waitForSlot();
    expect(second.serverTimeUs - first.serverTimeUs).toBe(5_000_000);
  });

  it("shares one configured rate: a change by one worker binds every other at once", async () => {
    const apiKey = account();
    const a = createFleet(client(), {
      deployment: "test",
      apiKey,
      createRate: { limit: 20, windowMs: 10_000 },
    }).createLimiter;
    const b = createFleet(client(), {
      deployment: "test",
      apiKey,
      createRate: { limit: 20, windowMs: 10_000 },
    }).createLimiter;

    expect(await a.configureRate(2, 60_000)).toEqual({ changed: true });
    expect(await b.currentRate()).toEqual({ limit: 2, windowMs: 60_000 });
    expect((await b.acquire()).ok).toBe(true);
    expect((await b.acquire()).ok).toBe(true);
    expect((await b.acquire()).ok).toBe(false);

    // A worker started with another KIE_RATE_LIMIT replaces the value, and learns what it replaced.
    expect(await b.configureRate(3, 60_000)).toEqual({
      previous: { limit: 2, windowMs: 60_000 },
      changed: true,
    });
    expect(await a.configureRate(3, 60_000)).toEqual({
      previous: { limit: 3, windowMs: 60_000 },
      changed: false,
    });
    expect((await a.acquire()).ok).toBe(true);
    expect((await b.acquire()).ok).toBe(false);
  });

  it("after a limit is lowered, waits until enough admissions have left the window", async () => {
    const apiKey = account();
    const clock = manualClock();
    const limiter = createFleet(client(), {
      deployment: "test",
      apiKey,
      clock,
      scriptClock: clock,
    }).createLimiter;
    await limiter.configureRate(4, 10_000);
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await limiter.acquire();
      if (r.ok) times.push(r.serverTimeUs);
      clock.advance(200);
    }
    await limiter.configureRate(2, 10_000);
    const refused = await limiter.acquire();
    if (refused.ok) throw new Error("expected a refusal");
    // Two of four must leave before one of two slots is free: the third admission's expiry.
    const expected = 10_000 - (refused.serverTimeUs - times[2]!) / 1_000;
    expect(Math.abs(refused.retryInMs - expected)).toBeLessThanOrEqual(1);
  });

  it("leaves only an expiring window behind, and a poll limiter apart from the create one", async () => {
    const apiKey = account();
    const redis = client();
    const fleet = createFleet(redis, { deployment: "test", apiKey });
    const poll = fleet.pollLimiter(3);
    expect(fleet.pollLimiter(3)).toBe(poll);
    for (let i = 0; i < 3; i++) expect((await poll.acquire()).ok).toBe(true);
    expect((await poll.acquire()).ok).toBe(false);
    expect((await fleet.createLimiter.acquire()).ok).toBe(true);
    await expect(poll.configureRate(5, 1_000)).rejects.toThrow(/fixed rate/);

    const keys = await accountKeys(redis, apiKey);
    expect(keys.map((k) => k.split(":").slice(3).join(":"))).toEqual(["rate:create", "rate:poll"]);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10_000);
    }
    expect(keys.every((k) => k.includes(`{${fleet.accountId}}`) && !k.includes(apiKey))).toBe(true);
  });

  it.each([
    [20, { limit: 20, windowMs: 1_000 }],
    [2.5, { limit: 2, windowMs: 1_000 }],
    [0.5, { limit: 1, windowMs: 2_000 }],
    [0.3, { limit: 1, windowMs: 3_334 }],
  ])("a poll rate of %d per second is the window %o", (rate, window) => {
    expect(perSecond(rate)).toEqual(window);
  });

  it("with a margin, each slot is held that much past the window (arrival jitter absorbed)", async () => {
    // The workers' create limiter: a request admitted as a slot frees may reach KIE sooner after
    // the earlier one than the window; the margin keeps that from being a 429.
    const clock = manualClock();
    const limiter = createFleet(client(), {
      deployment: "test",
      apiKey: account(),
      createRate: { limit: 1, windowMs: 3_000 },
      createMarginMs: 2_000,
      clock,
      scriptClock: clock,
    }).createLimiter;
    const first = await limiter.acquire();
    clock.advance(100);
    const refused = await limiter.acquire();
    if (!first.ok || refused.ok) throw new Error("expected one admission, then a refusal");
    const expected = 5_000 - (refused.serverTimeUs - first.serverTimeUs) / 1_000;
    expect(Math.abs(refused.retryInMs - expected)).toBeLessThanOrEqual(1);

    clock.advance(3_400);
    expect((await limiter.acquire()).ok).toBe(false); // past the window, within the margin
    clock.advance(2_000);
    expect((await limiter.acquire()).ok).toBe(true);
  });

  it("waitForSlot gives up with the signal's reason when aborted", async () => {
    const limiter = new SlidingWindowLimiter(client(), {
      accountId: createFleet(client(), { deployment: "test", apiKey: account() }).accountId,
      name: "create",
      rate: { limit: 1, windowMs: 60_000 },
    });
    await limiter.waitForSlot();
    const controller = new AbortController();
    // Shutdown arrives while the waiter sleeps for the slot to free (a minute away).
    const clock = {
      ...systemClock,
      sleep: (ms: number, signal?: AbortSignal) => {
        const sleeping = systemClock.sleep(ms, signal);
        controller.abort(new Error("shutting down"));
        return sleeping;
      },
    };
    await expect(limiter.waitForSlot(controller.signal, clock)).rejects.toThrow("shutting down");
  });
});
