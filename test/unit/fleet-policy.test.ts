/**
 * The fleet policy table: what each fleet-wide KIE answer makes the submit stage do, what each
 * pause kind ranks and how it is probed, and the submit gate's probes read from it.
 */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import type { PauseState } from "../../src/fleet/pause.js";
import {
  PAUSE_KINDS,
  PAUSE_POLICY,
  type PauseKind,
  type SubmitFleetAction,
  submitFleetAction,
} from "../../src/fleet/policy.js";
import { type FleetEffect, KieError } from "../../src/kie/errors.js";
import { waitForOpenGate } from "../../src/worker/gate.js";

/** Every fleet effect (a Record, so a new effect without a row here does not compile). */
const EXPECTED: Record<FleetEffect, SubmitFleetAction> = {
  "rate-limited": { action: "back-off", kind: "rate-limited", log: "fleet backs off" },
  maintenance: { action: "back-off", kind: "maintenance", log: "fleet backs off" },
  "out-of-credits": {
    action: "pause",
    kind: "out-of-credits",
    reason: "KIE: credits insufficient (402 no credits)",
    probe: { probeAfterMs: 60_000, probeEveryMs: 60_000 },
    log: "out of credits: submissions paused fleet-wide; the balance is checked every minute",
  },
  "usage-cap": {
    action: "pause",
    kind: "usage-cap",
    reason: "KIE: the key's usage cap is reached (433 cap)",
    probe: { probeAfterMs: 300_000, probeEveryMs: 300_000 },
    log: "the API key's usage cap is reached: submissions paused; one submit probes every 5 minutes",
  },
  "bad-key": {
    action: "pause",
    kind: "bad-key",
    reason:
      "KIE refused the API key (401): set a valid KIE_API_KEY (with KIE_API_KEYS: replace the key the log names by its short hash), then run `kie-batch resume`",
    log: "KIE refused the API key: submissions paused fleet-wide until `kie-batch resume`",
  },
};
const MESSAGES: Record<FleetEffect, string> = {
  "rate-limited": "429 slow down",
  maintenance: "455 maintenance",
  "out-of-credits": "402 no credits",
  "usage-cap": "433 cap",
  "bad-key": "401 who are you",
};
const effects = Object.keys(EXPECTED) as FleetEffect[];

describe("submitFleetAction", () => {
  it.each(effects)("%s: the submit stage's move comes from the table", (fleetEffect) => {
    expect(submitFleetAction({ fleetEffect, message: MESSAGES[fleetEffect] })).toEqual(EXPECTED[fleetEffect]);
  });

  it.each(effects)("%s: a real KieError gives the same move", (fleetEffect) => {
    const error = new KieError({
      code: "unknown_code",
      message: MESSAGES[fleetEffect],
      retryable: true,
      fleetEffect,
    });
    expect(submitFleetAction(error)).toEqual(EXPECTED[fleetEffect]);
  });

  it("an error without a fleet effect concerns only its own job", () => {
    expect(submitFleetAction({ fleetEffect: undefined, message: "500" })).toBeUndefined();
  });

  it.each([
    ["out-of-credits", 300],
    ["usage-cap", 500],
  ] as const)("%s: a worker's own probe interval is the first delay and the period", (kind, everyMs) => {
    expect(submitFleetAction({ fleetEffect: kind, message: "x" }, { [kind]: everyMs })).toMatchObject({
      kind,
      probe: { probeAfterMs: everyMs, probeEveryMs: everyMs },
    });
  });

  it("a kind that waits for an operator gets no probe, whatever the worker was configured with", () => {
    const action = submitFleetAction({ fleetEffect: "bad-key", message: "x" }, { "bad-key": 1_000 });
    expect(action).not.toHaveProperty("probe");
  });
});

describe("PAUSE_POLICY", () => {
  it.each([
    ["manual", 3, "none", undefined],
    ["bad-key", 2, "none", undefined],
    ["out-of-credits", 1, "balance-check", 60_000],
    ["usage-cap", 1, "single-submit", 300_000],
  ] as const)("%s: rank %i, probe %s every %s ms", (kind, rank, probe, probeEveryMs) => {
    const policy = PAUSE_POLICY[kind];
    expect(policy.rank).toBe(rank);
    expect(policy.probe).toBe(probe);
    expect("probeEveryMs" in policy ? policy.probeEveryMs : undefined).toBe(probeEveryMs);
  });

  it("lists every kind once", () => {
    expect(PAUSE_KINDS).toEqual(["manual", "bad-key", "out-of-credits", "usage-cap"]);
  });
});

describe("the submit gate probes as the table says", () => {
  /** A fleet paused with `kind` whose probe is due, and a KIE balance of `credits`. */
  function gateDeps(kind: PauseKind, credits: number) {
    let pause: PauseState | null = { kind, reason: "r", since: 1, nextProbeAt: 2, probeEveryMs: 10 };
    const resumed: (PauseKind | undefined)[] = [];
    const deps = {
      fleet: {
        readGate: async () => ({ paused: pause, backoffMs: 0 }),
        claimProbe: async () => true,
        resume: async (k?: PauseKind) => {
          resumed.push(k);
          pause = null;
        },
      },
      kie: { getCredits: async () => credits },
      clock: {
        sleep: async () => {
          throw new Error("the gate waited: no probe ran");
        },
      },
    };
    return { deps, resumed };
  }

  it("usage-cap: the winner of the probe sends one submit", async () => {
    const { deps, resumed } = gateDeps("usage-cap", 0);
    await expect(waitForOpenGate(deps, AbortSignal.timeout(5_000), silentLogger())).resolves.toBe("probe");
    expect(resumed).toEqual([]);
  });

  it("out-of-credits: a balance that pays for an image lifts that kind of pause only", async () => {
    const { deps, resumed } = gateDeps("out-of-credits", 1_000);
    await expect(waitForOpenGate(deps, AbortSignal.timeout(5_000), silentLogger())).resolves.toBe("open");
    expect(resumed).toEqual(["out-of-credits"]);
  });

  it("out-of-credits: an empty balance keeps the pause and waits", async () => {
    const { deps, resumed } = gateDeps("out-of-credits", 0);
    await expect(waitForOpenGate(deps, AbortSignal.timeout(5_000), silentLogger())).rejects.toThrow(
      "the gate waited",
    );
    expect(resumed).toEqual([]);
  });
});
