/**
 * A bounded set of writes in flight: the reader hands over a chunk and goes on parsing the next
 * while Redis works, but never runs more than `max` chunks ahead (memory stays constant).
 */
export class InFlightWindow {
  private readonly pending: Promise<void>[] = [];

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError("max must be a whole number >= 1");
  }

  /** Tracks `work`; resolves once fewer than `max` writes are pending. Rejects with the first failure. */
  async push(work: Promise<void>): Promise<void> {
    // Observed here or in `drain`; never an unhandled rejection while it waits its turn.
    work.catch(() => {});
    this.pending.push(work);
    while (this.pending.length >= this.max) {
      try {
        await this.pending.shift();
      } catch (error) {
        await this.settleAll();
        throw error;
      }
    }
  }

  /** Waits for every pending write; rejects with the first failure, after all have settled. */
  async drain(): Promise<void> {
    const failure = await this.settleAll();
    if (failure) throw failure.reason;
  }

  private async settleAll(): Promise<PromiseRejectedResult | undefined> {
    const results = await Promise.allSettled(this.pending.splice(0));
    return results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  }
}
