/**
 * Which thumbnails the disk cache keeps: least recently used first out, within a byte bound.
 * Pure bookkeeping (no I/O), so the bound is tested without a disk.
 */
export class ThumbIndex {
  private readonly entries = new Map<string, number>();
  private total = 0;

  /** @param maxBytes the bound on the bytes of every kept thumbnail together */
  constructor(private readonly maxBytes: number) {
    if (!(maxBytes >= 0)) throw new RangeError("maxBytes must be >= 0");
  }

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  /** True when kept; marks it as just used. */
  touch(name: string): boolean {
    const bytes = this.entries.get(name);
    if (bytes === undefined) return false;
    this.entries.delete(name);
    this.entries.set(name, bytes);
    return true;
  }

  /**
   * Records a thumbnail of `bytes` and returns the names to delete so the total stays within the
   * bound (the least recently used; the new one itself when it alone is over the bound).
   */
  add(name: string, bytes: number): string[] {
    this.forget(name);
    this.entries.set(name, bytes);
    this.total += bytes;
    const evicted: string[] = [];
    for (const [oldest, size] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.total -= size;
      evicted.push(oldest);
    }
    return evicted;
  }

  forget(name: string): void {
    const bytes = this.entries.get(name);
    if (bytes === undefined) return;
    this.entries.delete(name);
    this.total -= bytes;
  }
}
