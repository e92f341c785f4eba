const LF = 0x0a;
const CR = 0x0d;

/**
 * Maps byte offsets of a stream to 1-based line numbers. Chunks are registered as they flow to
 * a parser; offsets are then asked in non-decreasing order (the parser reports records in file
 * order), so only the line ends between the parser's position and the reader's are held.
 *
 * A line ends at an LF, a CRLF (counted once, at its LF) or a CR alone: csv-parse ends records at
 * all three (csv-parse-reader.ts), so a file with CR line ends only is numbered as an editor
 * shows it, not as one line.
 */
export class LineIndex {
  private lineEnds: number[] = [];
  private head = 0;
  private passed = 0;
  private seen = 0;
  /** A CR that ended the last chunk: a line end unless the next chunk starts with its LF. */
  private pendingCr: number | undefined;

  /** Registers the next chunk of the stream. */
  add(chunk: Uint8Array): void {
    const ends = this.lineEnds;
    if (this.pendingCr !== undefined) {
      if (chunk.length === 0) return;
      if (chunk[0] !== LF) ends.push(this.pendingCr);
      this.pendingCr = undefined;
    }
    // The common case, no CR: the native search, as fast as before CRs were counted.
    if (chunk.indexOf(CR) === -1) {
      for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) ends.push(this.seen + at);
      this.seen += chunk.length;
      return;
    }
    const last = chunk.length - 1;
    for (let at = 0; at <= last; at++) {
      const byte = chunk[at];
      if (byte === LF) ends.push(this.seen + at);
      else if (byte === CR) {
        if (at === last) this.pendingCr = this.seen + at;
        else if (chunk[at + 1] !== LF) ends.push(this.seen + at);
      }
    }
    this.seen += chunk.length;
  }

  /** The stream has ended: a CR it ended with is a line end. */
  end(): void {
    if (this.pendingCr !== undefined) this.lineEnds.push(this.pendingCr);
    this.pendingCr = undefined;
  }

  /** The line holding the byte at `offset` (1 + line ends before it). Never ask for a smaller offset. */
  lineAt(offset: number): number {
    const ends = this.lineEnds;
    while (this.head < ends.length && ends[this.head]! < offset) {
      this.head++;
      this.passed++;
    }
    if (this.head > 4096 && this.head * 2 > ends.length) {
      this.lineEnds = ends.slice(this.head);
      this.head = 0;
    }
    return this.passed + 1;
  }
}
