/**
 * The create limiter's margin (CREATE_MARGIN): each admission holds its slot 2.5% of the window
 * longer than the window, at least 100 ms and at most 250 ms, computed from the window in force
 * in Redis, on a manual clock.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { CREATE_MARGIN, createFleet, type SlidingWindowLimiter } from "../../src/fleet/index.js";
import {
  connect,
  deleteAccountKeys,
  fakeApiKey,
  type ManualClock,
  manualClock,
} from "../helpers/fleet-redis.js";

const redis = connect();
const apiKeys: string[] = [];

afterEach(async () => {
  for (const key of apiKeys.splice(0)) await deleteAccountKeys(redis, key);
});

afterAll(async () => {
  await redis.quit();
});

function createLimiter(windowMs: number, clock: ManualClock): SlidingWindowLimiter {
  const apiKey = fakeApiKey();
  apiKeys.push(apiKey);
  return createFleet(redis, {
    deployment: "test",
    apiKey,
    createRate: { limit: 1, windowMs },
    createMarginMs: CREATE_MARGIN,
    clock,
    scriptClock: clock,
  }).createLimiter;
}

/** How long one admission holds the only slot: refused until then, admitted from then. */
async function expectSlotHeld(limiter: SlidingWindowLimiter, clock: ManualClock, heldMs: number) {
  expect((await limiter.acquire()).ok).toBe(true);
  const refused = await limiter.acquire();
  expect(refused).toMatchObject({ ok: false, retryInMs: heldMs });
  clock.advance(heldMs - 1);
  expect((await limiter.acquire()).ok).toBe(false);
  clock.advance(1);
  expect((await limiter.acquire()).ok).toBe(true);
}

/** A 2 s window on a manual clock with one admission taken: its member. */
async function oneAdmitted() {
  const clock = manualClock();
  const limiter = createLimiter(2_000, clock);
  const admitted = await limiter.acquire();
  if (!admitted.ok) throw new Error("not admitted");
  return { clock, limiter, member: admitted.member };
}

describe("the create limiter's margin", () => {
  it.each([
    [2_000, 2_100], // the 100 ms floor (2.5% would be 50 ms)
    [4_000, 4_100], // 2.5%: 2.4% of the rate, where a fixed 250 ms cost 5.9%
    [10_000, 10_250], // 2.5% at KIE's documented window
    [60_000, 60_250], // the 250 ms cap: jitter does not grow with the window
  ])("on a %d ms window each slot is held %d ms", async (windowMs, heldMs) => {
    const clock = manualClock();
    await expectSlotHeld(createLimiter(windowMs, clock), clock, heldMs);
  });

  it("follows a fleet-wide rate change: the margin is taken from the window in force", async () => {
    const clock = manualClock();
    const limiter = createLimiter(10_000, clock);
    await limiter.configureRate(1, 4_000);
    await expectSlotHeld(limiter, clock, 4_100);
  });

  it("refuses a rule that cannot be a margin", () => {
    for (const rule of [
      { fraction: -0.1, minMs: 0, maxMs: 100 },
      { fraction: 0.1, minMs: 200, maxMs: 100 },
      { fraction: Number.NaN, minMs: 0, maxMs: 100 },
    ]) {
      expect(() =>
        createFleet(redis, { deployment: "test", apiKey: fakeApiKey(), createMarginMs: rule }),
      ).toThrow(RangeError);
    }
  });

  it("a create that leaves late has its admission moved to now: the next keep a window from when it left", async () => {
    const { clock, limiter, member: admittedMember } = await oneAdmitted();
    clock.advance(300);
    expect(await limiter.leaving(admittedMember)).toBe(true);
    // Held 2,100 ms (window and margin) from when it left, 300 ms after its admission.
    expect(await limiter.acquire()).toMatchObject({ ok: false, retryInMs: 2_100 });
    clock.advance(2_099);
    expect((await limiter.acquire()).ok).toBe(false);
    clock.advance(1);
    expect((await limiter.acquire()).ok).toBe(true);
  });

  it("a create leaving after its admission left the window counts from now; leaving twice moves nothing more", async () => {
    const { clock, limiter, member: admittedMember } = await oneAdmitted();
    clock.advance(2_100);
    expect(await limiter.leaving(admittedMember)).toBe(true);
    expect(await limiter.leaving(admittedMember)).toBe(true);
    expect(await limiter.acquire()).toMatchObject({ ok: false, retryInMs: 2_100 });
  });

  it("a create whose window filled while it waited (others admitted through an outage) must not leave; its admission goes", async () => {
    const { clock, limiter, member: stuckMember } = await oneAdmitted();
    clock.advance(2_100);
    const other = await limiter.acquire();
    expect(other.ok).toBe(true);
    expect(await limiter.leaving(stuckMember)).toBe(false);
    // Only the other's admission holds the window: the stuck create waits for its own slot.
    expect(await limiter.acquire()).toMatchObject({ ok: false, retryInMs: 2_100 });
    clock.advance(2_100);
    expect((await limiter.acquire()).ok).toBe(true);
  });

  it("the window's key lives a window and its margin past the moved admission", async () => {
    const { clock, limiter, member: admittedMember } = await oneAdmitted();
    const key = (limiter as unknown as { windowKey: string }).windowKey;
    // Real time for the key's TTL: without the move's PEXPIRE it would be ~100 ms short.
    await new Promise((resolve) => setTimeout(resolve, 150));
    clock.advance(150);
    await limiter.leaving(admittedMember);
    expect(await redis.pttl(key)).toBeGreaterThan(2_100 - 40);
  });
});
