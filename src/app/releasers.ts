/** A releaser that failed, by the name it was pushed with. */
export interface ReleaseFailure {
  name: string;
  error: unknown;
}

export interface ReleasersOptions {
  /** Told of each failure as it happens (a log line); the failures are still thrown at the end. */
  onError?: (failure: ReleaseFailure) => void;
}

/**
 * A stack of things to release, like `AsyncDisposableStack` (which Node 20 lacks): what was
 * acquired last is released first, since it may use what came before it (workers use the
 * connection). One failure never keeps the rest open: every releaser runs, then the failures are
 * thrown together as one AggregateError.
 */
export class Releasers implements AsyncDisposable {
  private readonly stack: { name: string; release: () => unknown }[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ReleasersOptions = {}) {}

  /** Adds a releaser; it runs once, in `closeAll()`, before those pushed earlier. */
  push(name: string, release: () => unknown): void {
    if (this.closing) throw new Error(`cannot add "${name}": already closing`);
    this.stack.push({ name, release });
  }

  /**
   * Runs every releaser, the last pushed first, each after the previous one settled. Rejects with
   * an AggregateError naming each failure once all ran. Later calls return the same promise.
   */
  closeAll(): Promise<void> {
    this.closing ??= this.run();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.closeAll();
  }

  private async run(): Promise<void> {
    const failures: ReleaseFailure[] = [];
    for (const { name, release } of this.stack.reverse()) {
      try {
        await release();
      } catch (error) {
        const failure = { name, error };
        failures.push(failure);
        this.options.onError?.(failure);
      }
    }
    this.stack.length = 0;
    if (failures.length > 0) {
      throw new AggregateError(
        failures.map((f) => f.error),
        `closing failed: ${failures.map((f) => `${f.name} (${messageOf(f.error)})`).join(", ")}`,
      );
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
