/**
 * The account's create limit as KIE applies it: a sliding window of accepted creates per key,
 * in real time (never scaled: clients pace themselves with real clocks). Rejected requests do
 * not count, as a 429 "does not enter the queue".
 */
export class SlidingWindow {
  private readonly accepted = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** True when one more create for `key` at `now` stays within the limit. Records nothing. */
  allows(key: string, now: number): boolean {
    return this.prune(key, now).length < this.limit;
  }

  /** Records an accepted create. */
  record(key: string, now: number): void {
    this.prune(key, now).push(now);
  }

  private prune(key: string, now: number): number[] {
    let times = this.accepted.get(key);
    if (!times) {
      times = [];
      this.accepted.set(key, times);
    }
    // Times are pushed in order, so the expired ones are a prefix.
    let expired = 0;
    while (expired < times.length && times[expired]! <= now - this.windowMs) expired++;
    if (expired > 0) times.splice(0, expired);
    return times;
  }
}
