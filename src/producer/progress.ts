import type { Clock } from "../core/clock.js";
import { PROGRESS_AFTER_MS, PROGRESS_EVERY_MS } from "./limits.js";
import type { Output } from "./types.js";

/** A one-line, self-redrawing progress report: `enqueuing: 120,000 rows (48,210 rows/s)`. */
export interface ProgressLine {
  /** Records that `rows` rows in all have been handled; redraws when it is time. */
  update(rows: number): void;
  /** Erases the line (if drawn), so the summary starts on a clean line. */
  done(): void;
}

const SILENT: ProgressLine = { update() {}, done() {} };

/**
 * A progress line on `stream` when it is a TTY, nothing otherwise (pipes and logs get no control
 * characters). It appears only once the pass has run `PROGRESS_AFTER_MS`: small files finish first.
 */
export function progressLine(
  stream: Output | undefined,
  clock: Pick<Clock, "now">,
  label: string,
): ProgressLine {
  if (!stream?.isTTY) return SILENT;
  const started = clock.now();
  let drawnAt = 0;
  let drawn = false;
  let checkedAt = 0;
  return {
    update(rows) {
      // Ask the clock only every 1,024 rows or more (callers report per row, or per batch of any size).
      if (rows - checkedAt < 1024) return;
      checkedAt = rows;
      const now = clock.now();
      if (now - started < PROGRESS_AFTER_MS || now - drawnAt < PROGRESS_EVERY_MS) return;
      drawnAt = now;
      drawn = true;
      const rate = Math.round((rows / (now - started)) * 1000);
      stream.write(`\r\x1b[K${label}: ${formatCount(rows)} rows (${formatCount(rate)} rows/s)`);
    },
    done() {
      if (drawn) stream.write("\r\x1b[K");
    },
  };
}

/** 1234567 -> "1,234,567". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
