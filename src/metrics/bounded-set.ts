/**
 * A set that remembers at most `capacity` values, forgetting the oldest first. A worker sees
 * unboundedly many task ids over its life; counting each one once must not grow memory with them.
 */
export class BoundedSet<T> {
  private readonly values = new Set<T>();

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError("BoundedSet: capacity must be an integer >= 1");
    }
  }

  get size(): number {
    return this.values.size;
  }

  has(value: T): boolean {
    return this.values.has(value);
  }

  /** Adds `value`; false when it was already there. A Set iterates in insertion order: the first is the oldest. */
  add(value: T): boolean {
    if (this.values.has(value)) return false;
    this.values.add(value);
    if (this.values.size > this.capacity) {
      const oldest = this.values.values().next();
      if (!oldest.done) this.values.delete(oldest.value);
    }
    return true;
  }
}
