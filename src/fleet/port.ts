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
  tryCreateSlot(signal?: AbortSignal): Promise<{ retryInMs: number; gate?: GateRead }>;
  /**
   * Called right before the create a slot was taken for (by `createSlot` or `tryCreateSlot` with
   * the same `signal`) goes out: when it seems to leave `LATE_CREATE_MS` or more after its
   * admission (the checks between them, a busy event loop), the admission is moved to now on the
   * window's clock, so the next admissions keep a window's distance from when it really left.
   * False: the window filled meanwhile (an outage waited through, a lowered limit): the slot is
   * given back and the create must not go out. Optional: a fleet without it leaves the margin to
   * cover that lateness.
   */
  createLeaving?(signal: AbortSignal): Promise<boolean>;
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

/**
 * A create that seems to leave this much or more after its admission has its admission moved to
 * now (`createLeaving`). Below it, one Redis call per create would buy nothing the margin (100 ms
 * at least) does not already cover. The estimate only decides whether to ask: the move itself is
 * made on Redis's clock, when the call runs (after any wait for Redis itself).
 */
export const LATE_CREATE_MS = 10;

/** The Redis-backed FleetPort of one account. */
export function createFleetPort(fleet: Fleet, settings: FleetPortSettings) {
  const pollLimiter = fleet.pollLimiter(settings.pollRatePerSec);
  /** Each waiting create's admission (its job's signal: one create at a time per job), until it leaves. */
  const admissions = new WeakMap<AbortSignal, { member: string; serverMs: number; at: number }>();
  const lateness = createLateness();
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
      const { gate, member, serverTimeUs } = await fleet.createLimiter.waitForSlot(signal);
      admissions.set(signal, { member, serverMs: lateness.admitted(serverTimeUs), at: performance.now() });
      if (gate) seen(gate, at);
      return gate;
    },
    tryCreateSlot: async (signal) => {
      const at = closings;
      const result = await fleet.createLimiter.acquire();
      if (!result.ok) return { retryInMs: Math.max(1, result.retryInMs) };
      if (signal) {
        const serverMs = lateness.admitted(result.serverTimeUs);
        admissions.set(signal, { member: result.member, serverMs, at: performance.now() });
      }
      if (!result.gate) return { retryInMs: 0 };
      seen(result.gate, at);
      return { retryInMs: 0, gate: result.gate };
    },
    createLeaving: async (signal) => {
      const admission = admissions.get(signal);
      admissions.delete(signal);
      if (!admission) return true;
      // Either measure may say late: the clocks' (an answer read late counts) or a stopwatch from
      // the answer (a host clock stepped back since would hide the lateness from the first).
      const lateMs = Math.max(lateness.since(admission.serverMs), performance.now() - admission.at);
      if (lateMs < LATE_CREATE_MS) return true;
      return fleet.createLimiter.leaving(admission.member);
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

/** Offsets kept to find this host's clock against Redis's (the smallest of the last ones). */
const OFFSET_SAMPLES = 64;

/**
 * How late a create seems to leave after its admission, on Redis's clock (the window's): the
 * admission is stamped by Redis TIME, and this host's clock differs from it by an offset plus the
 * time the admission's answer took to be read (a busy event loop delays that read too, which a
 * local stopwatch started on the answer would miss). The offset is the smallest (host clock at the
 * answer − admission time) of the last admissions: the answer read at once. A clock stepped
 * forward makes it too high for a while (a Redis call per create, never a wrong move: the move is
 * made on Redis's clock); one stepped back, too low, which the caller's stopwatch covers.
 */
function createLateness() {
  const offsets: number[] = [];
  let next = 0;
  return {
    /** The admission's time (ms, Redis's clock); records this host's offset from it. */
    admitted(serverTimeUs: number): number {
      const serverMs = serverTimeUs / 1000;
      offsets[next] = Date.now() - serverMs;
      next = (next + 1) % OFFSET_SAMPLES;
      return serverMs;
    },
    /** Milliseconds from the admission at `serverMs` to now, on Redis's clock. */
    since(serverMs: number): number {
      return Date.now() - Math.min(...offsets) - serverMs;
    },
  };
}
