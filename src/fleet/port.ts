import type { FleetBackoffKind } from "../core/backoff.js";
import type { Fleet } from "./fleet.js";
import type { PauseOptions, PauseState } from "./pause.js";
import type { PauseKind } from "./policy.js";
import type { SubmitGate } from "./submit-gate.js";

/**
 * The fleet as the worker stages consume it: declared here, next to the fleet, so worker/ (and
 * metrics/, alerts/) import it from below and a test fake is an object literal of this shape.
 */
export interface FleetPort {
  getPause(): Promise<PauseState | null>;
  /** The pause and the 429/455 backoff left, in one round trip: what a submitter checks each time. */
  readGate(): Promise<GateRead>;
  /**
   * An open gate as this process last read it, when that read (any caller's) found it open less
   * than `maxAgeMs` ago and none found it closed since; else a fresh `readGate`. For the check
   * before a submitter takes its slots, never for the one right before the create. Absent: read.
   */
  recentGate?(maxAgeMs: number): Promise<{ paused: PauseState | null; backoffMs: number }>;
  /** Records a pause; true when this call started it (so exactly one worker logs and alerts). */
  pause(kind: PauseKind, reason: string, options?: PauseOptions): Promise<boolean>;
  /** Clears the pause; with `kind`, only a pause of that kind (a probe never lifts an operator's pause). */
  resume(kind?: PauseKind): Promise<void>;
  /** True for exactly one caller once a paused state's probe is due. */
  claimProbe(): Promise<boolean>;
  /** A 429 or 455 seen: every submitter backs off for the returned time. */
  backoff(kind: FleetBackoffKind): Promise<{ remainingMs: number; consecutive: number }>;
  backoffRemaining(): Promise<number>;
  clearBackoff(): Promise<void>;
  /**
   * Waits for a slot of the account's sliding create window. Resolves with the gate as it stood
   * at the admission (read in the same script), where the key's pause shares the window's hash
   * tag; else with nothing, and the caller reads the gate itself.
   */
  createSlot(signal: AbortSignal): Promise<GateRead | undefined>;
  /**
   * Takes a create slot if the window has one now: `retryInMs` 0, else the ms until one frees
   * (nothing taken). What a submitter choosing among several keys asks of each. With a slot, the
   * gate as it stood at the admission, as `createSlot` gives it (else the caller reads it).
   */
  tryCreateSlot(): Promise<{ retryInMs: number; gate?: GateRead }>;
  /** Waits for a slot of the account's status-call rate. */
  pollSlot(signal: AbortSignal): Promise<void>;
  /** KIE_MAX_IN_FLIGHT (0: no cap): true when the job holds a slot. */
  tryAcquireInFlight(jobKey: string): Promise<boolean>;
  touchInFlight(jobKey: string): Promise<void>;
  releaseInFlight(jobKey: string): Promise<void>;
}

/** A submitter's view of the gate: the key's pause and its account's 429/455 backoff. */
export type GateRead = SubmitGate;

export interface FleetPortSettings {
  /** KIE_MAX_IN_FLIGHT; 0 = no cap (slots are still counted for status). */
  maxInFlight: number;
  /** KIE_POLL_RATE: status calls per second for the account. */
  pollRatePerSec: number;
}

/** The Redis-backed FleetPort of one account. */
export function createFleetPort(fleet: Fleet, settings: FleetPortSettings) {
  const pollLimiter = fleet.pollLimiter(settings.pollRatePerSec);
  /** When a gate read last found the gate open (performance.now()); -Infinity once one found it closed. */
  let openSeenAt = Number.NEGATIVE_INFINITY;
  /**
   * Bumped by every pause or backoff set here: a read sent before one and answered after it says
   * nothing of the gate now, so it does not mark the gate open (it would hide our own pause).
   */
  let closings = 0;
  const seen = (gate: { paused: unknown; backoffMs: number }, closingsAtSend: number) => {
    if (closingsAtSend !== closings) return;
    openSeenAt = gate.paused === null && gate.backoffMs === 0 ? performance.now() : Number.NEGATIVE_INFINITY;
  };
  const readGate = async () => {
    const at = closings;
    const gate = await fleet.readGate();
    seen(gate, at);
    return gate;
  };
  return {
    getPause: () => fleet.pause.get(),
    readGate,
    recentGate: (maxAgeMs) =>
      performance.now() - openSeenAt < maxAgeMs
        ? Promise.resolve({ paused: null, backoffMs: 0 })
        : readGate(),
    pause: async (kind, reason, options) => {
      closings++;
      openSeenAt = Number.NEGATIVE_INFINITY;
      return (await fleet.pause.pause(kind, reason, options)).isNew;
    },
    /** Pass `kind` after a successful probe, so it cannot lift a pause an operator set meanwhile. */
    resume: async (kind) => {
      await fleet.pause.resume(kind);
    },
    claimProbe: async () => (await fleet.pause.claimProbe()) !== null,
    backoff: async (kind) => {
      closings++;
      openSeenAt = Number.NEGATIVE_INFINITY;
      const { remainingMs, consecutive } = await fleet.backoff.hit(kind);
      return { remainingMs, consecutive };
    },
    backoffRemaining: () => fleet.backoff.remaining(),
    clearBackoff: () => fleet.backoff.clear(),
    createSlot: async (signal) => {
      const at = closings;
      const { gate } = await fleet.createLimiter.waitForSlot(signal);
      if (gate) seen(gate, at);
      return gate;
    },
    tryCreateSlot: async () => {
      const at = closings;
      const result = await fleet.createLimiter.acquire();
      if (!result.ok) return { retryInMs: Math.max(1, result.retryInMs) };
      if (!result.gate) return { retryInMs: 0 };
      seen(result.gate, at);
      return { retryInMs: 0, gate: result.gate };
    },
    pollSlot: async (signal) => {
      await pollLimiter.waitForSlot(signal);
    },
    tryAcquireInFlight: (jobKey) => fleet.inFlight.tryAcquire(jobKey, settings.maxInFlight),
    touchInFlight: async (jobKey) => {
      await fleet.inFlight.touch(jobKey);
    },
    releaseInFlight: async (jobKey) => {
      await fleet.inFlight.release(jobKey);
    },
  } satisfies FleetPort;
}
