import type { FleetPort } from "../../src/worker/ports.js";

/** A fleet that holds nothing back: no pause, no backoff, every slot free; a test overrides what it looks at. */
export function openFleet(overrides: Partial<FleetPort> = {}): FleetPort {
  return {
    getPause: async () => null,
    readGate: async () => ({ paused: null, backoffMs: 0 }),
    pause: async () => true,
    resume: async () => {},
    claimProbe: async () => false,
    backoff: async () => ({ remainingMs: 0, consecutive: 0 }),
    backoffRemaining: async () => 0,
    clearBackoff: async () => {},
    createSlot: async () => {},
    tryCreateSlot: async () => ({ retryInMs: 0 }),
    pollSlot: async () => {},
    tryAcquireInFlight: async () => true,
    touchInFlight: async () => {},
    releaseInFlight: async () => {},
    ...overrides,
  };
}
