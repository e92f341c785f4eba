import type { SlidingWindowLimiter } from "../../src/fleet/rate-limiter.js";

export interface Admission {
  /** Redis clock at admission (the limiter's own clock). */
  serverTimeUs: number;
  /** This machine's clock when the answer arrived (an independent, slightly late witness). */
  localMs: number;
  who: string;
}

/** Takes slots as fast as the limiter allows (sleeping retryInMs between refusals) for `durationMs`. */
export async function hammer(
  limiter: SlidingWindowLimiter,
  who: string,
  durationMs: number,
): Promise<Admission[]> {
  const admissions: Admission[] = [];
  const signal = AbortSignal.timeout(durationMs);
  for (;;) {
    try {
      const { serverTimeUs } = await limiter.waitForSlot(signal);
      admissions.push({ serverTimeUs, localMs: Date.now(), who });
    } catch (error) {
      if (signal.aborted) return admissions;
      throw error;
    }
  }
}

/** The most admissions found in any half-open window [t, t + windowUs), t an admission time. */
export function maxInAnyWindow(timesUs: readonly number[], windowUs: number): number {
  const sorted = [...timesUs].sort((a, b) => a - b);
  let max = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + windowUs) end++;
    max = Math.max(max, end - start);
  }
  return max;
}
