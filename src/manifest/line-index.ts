/**
 * Maps byte offsets of a stream to 1-based line numbers. Chunks are registered as they flow to
 * a parser; offsets are then asked in non-decreasing order (the parser reports records in file
 * order), so only the line feeds between the parser's position and the reader's are held.
 */
export class LineIndex {
  private lineFeeds: number[] = [];
  private head = 0;
  private passed = 0;
  private seen = 0;

  /** Registers the next chunk of the stream. */
  add(chunk: Uint8Array): void {
    let at = chunk.indexOf(0x0a);
    while (at !== -1) {
      this.lineFeeds.push(this.seen + at);
      at = chunk.indexOf(0x0a, at + 1);
    }
    this.seen += chunk.length;
  }

  /** The line holding the byte at `offset` (1 + line feeds before it). Never ask for a smaller offset. */
  lineAt(offset: number): number {
    const feeds = this.lineFeeds;
    while (this.head < feeds.length && feeds[this.head]! < offset) {
      this.head++;
      this.passed++;
    }
    if (this.head > 4096 && this.head * 2 > feeds.length) {
      this.lineFeeds = feeds.slice(this.head);
      this.head = 0;
    }
    return this.passed + 1;
  }
}
