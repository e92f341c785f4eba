import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { type ArchivePauseState, recentlyOpen } from "../../src/fleet/archive-pause.js";
import { afterAccepted, waitForOpenGate } from "../../src/worker/gate.js";
import { openFleet } from "../helpers/open-fleet.js";

describe("the submit gate's Redis reads", () => {
  it("an accepted create resets no ladder, and reads nothing, when the gate read before it saw no backoff", async () => {
    const calls: string[] = [];
    const fleet = openFleet({
      backoffRemaining: async () => {
        calls.push("read");
        return 0;
      },
      clearBackoff: async () => void calls.push("clear"),
    });
    await afterAccepted("open", fleet, silentLogger(), { backoffSet: false });
    expect(calls).toEqual([]);
  });

  it("a spent backoff is cleared after an accepted create; a running one (another submitter's 429) is not", async () => {
    const calls: string[] = [];
    let remaining = 0;
    const fleet = openFleet({
      backoffRemaining: async () => {
        calls.push("read");
        return remaining;
      },
      clearBackoff: async () => void calls.push("clear"),
    });
    await afterAccepted("open", fleet, silentLogger(), { backoffSet: true });
    expect(calls).toEqual(["read", "clear"]);
    calls.length = 0;
    remaining = 1_500;
    await afterAccepted("open", fleet, silentLogger(), { backoffSet: true });
    // Without a read before the create (a fake fleet), the ladder is checked as before.
    await afterAccepted("open", fleet, silentLogger());
    expect(calls).toEqual(["read", "read"]);
  });

  it("the gate before the slots may be the process's recent open read; a pause seen there is waited for", async () => {
    let recent = 0;
    let fresh = 0;
    const sleeps: number[] = [];
    const fleet = openFleet({
      recentGate: async () => {
        recent++;
        return { paused: null, backoffMs: 0 };
      },
      readGate: async () => {
        fresh++;
        return { paused: null, backoffMs: 0 };
      },
    });
    const deps = {
      fleet,
      kie: { getCredits: async () => 0 },
      clock: { sleep: async (ms: number) => void sleeps.push(ms) },
    };
    expect(await waitForOpenGate(deps, new AbortController().signal, silentLogger())).toBe("open");
    expect([recent, fresh]).toEqual([1, 0]);
    // A backoff in the recent answer is waited out, then asked again.
    const answers = [
      { paused: null, backoffMs: 700 },
      { paused: null, backoffMs: 0 },
    ];
    const backingOff = { ...deps, fleet: openFleet({ recentGate: async () => answers.shift()! }) };
    expect(await waitForOpenGate(backingOff, new AbortController().signal, silentLogger())).toBe("open");
    expect(sleeps).toEqual([700]);
    expect(answers).toEqual([]);
  });
});

describe("the archive gate's pause read", () => {
  it("is made at most once per period while archiving is not paused, and at once after a pause was seen or set", async () => {
    let reads = 0;
    let state: ArchivePauseState | null = null;
    const port = recentlyOpen(
      {
        get: async () => {
          reads++;
          return state;
        },
        pause: async () => true,
        resume: async () => {},
        claimProbe: async () => false,
      },
      60_000,
    );
    expect(await port.get()).toBeNull();
    expect(await port.get()).toBeNull();
    expect(reads).toBe(1);
    // This worker pauses archiving (the store refused): the next read goes to Redis.
    state = { kind: "store-unavailable", reason: "denied", since: 1 };
    await port.pause("store-unavailable", "denied");
    expect(await port.get()).toEqual(state);
    expect(await port.get()).toEqual(state);
    expect(reads).toBe(3);
    state = null;
    expect(await port.get()).toBeNull();
    expect(await port.get()).toBeNull();
    expect(reads).toBe(4);
  });

  it("a read answered after this worker paused archiving does not mark it open again (the read was sent before)", async () => {
    let release: (value: ArchivePauseState | null) => void = () => {};
    let reads = 0;
    const port = recentlyOpen(
      {
        get: () => {
          reads++;
          return reads === 1
            ? new Promise<ArchivePauseState | null>((resolve) => {
                release = resolve;
              })
            : Promise.resolve({ kind: "store-unavailable", reason: "denied", since: 1 });
        },
        pause: async () => true,
        resume: async () => {},
        claimProbe: async () => false,
      },
      60_000,
    );
    const inFlight = port.get();
    await port.pause("store-unavailable", "denied");
    release(null);
    expect(await inFlight).toBeNull();
    // The next read asks Redis, which has the pause: not the stale "open".
    expect((await port.get())?.kind).toBe("store-unavailable");
    expect(reads).toBe(2);
  });
});
