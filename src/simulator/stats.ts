/**
 * Counters for what the simulator saw, read in-process (`handle.stats()`) or over HTTP
 * (`GET /__sim/stats`) by tests and benchmarks that check a client from the outside.
 */
import type { SimulatorStats } from "./types.js";

/** The counters the simulator bumps; in-flight figures and credits come from their owners. */
export type Counters = Omit<SimulatorStats, "inFlight" | "maxInFlight" | "creditsLeft">;

export function createCounters(): Counters {
  return {
    creates: 0,
    createsByRequestHash: {},
    rateLimited: 0,
    statusCalls: 0,
    downloads: 0,
    downloadUrlCalls: 0,
    callbacksSent: 0,
    callbacksFailed: 0,
    callbacksAbandoned: 0,
    creditsCharged: 0,
    faults: {},
    createTimes: [],
    createdTaskIds: [],
    creditsByTask: {},
  };
}

export function recordCreate(
  counters: Counters,
  create: { taskId: string; requestHash: string; credits: number; at: number },
): void {
  const { taskId, requestHash, credits, at } = create;
  counters.creates++;
  counters.createsByRequestHash[requestHash] = (counters.createsByRequestHash[requestHash] ?? 0) + 1;
  counters.creditsCharged += credits;
  counters.createTimes.push(at);
  counters.createdTaskIds.push(taskId);
  counters.creditsByTask[taskId] = credits;
}

export function recordFault(counters: Counters, kind: string): void {
  counters.faults[kind] = (counters.faults[kind] ?? 0) + 1;
}

/** A deep copy: callers may keep or mutate it without touching the live counters. */
export function snapshotStats(
  counters: Counters,
  live: Pick<SimulatorStats, "inFlight" | "maxInFlight" | "creditsLeft">,
): SimulatorStats {
  return {
    ...counters,
    createsByRequestHash: { ...counters.createsByRequestHash },
    faults: { ...counters.faults },
    createTimes: [...counters.createTimes],
    createdTaskIds: [...counters.createdTaskIds],
    creditsByTask: { ...counters.creditsByTask },
    ...live,
  };
}
