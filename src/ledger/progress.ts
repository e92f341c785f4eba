import type { LedgerContext } from "./context.js";

/**
 * A batch's progress over time, for the dashboard's chart: per minute, the rows that reached
 * `archived` and the credits settled. One small hash per batch (`<batch hash>:progress`, so in the
 * batch's hash tag), fields `a:<minute>` and `c:<minute>` (minute = epoch ms / 60000), written by
 * transition.lua and settle.lua in the same step as the counters they follow, so the chart never
 * reads a row. One of the batch's side keys (batch-keys.ts): it expires, persists and is purged
 * with the batch. A field per minute and kind: a batch that runs a week holds ~20,000 fields.
 */
export function progressKey(ctx: LedgerContext, batch: string): string {
  return `${ctx.keys.batch(batch)}:progress`;
}

/** One minute of a batch's progress. */
export interface ProgressMinute {
  /** Epoch ms of the minute's start. */
  at: number;
  /** Rows that reached `archived` in that minute. */
  archived: number;
  /** Credits settled in that minute. */
  credits: number;
}

/** The minutes a progress read covers: the `minutes` whole minutes ending with the one holding `endAt`. */
export interface ProgressWindow {
  /** Epoch ms inside the window's last minute (usually now). */
  endAt: number;
  /** Minutes in the window, at most MAX_PROGRESS_MINUTES. */
  minutes: number;
}

/** The widest window one read takes (a day): an HMGET of two fields per minute. */
const MAX_PROGRESS_MINUTES = 1_440;

/**
 * The window's minutes with any progress, oldest first: one HMGET of the window's fields, so a
 * batch that ran for a week (~20,000 fields) costs the chart its hour, not the whole hash.
 */
export async function readProgress(
  ctx: LedgerContext,
  batch: string,
  window: ProgressWindow,
): Promise<ProgressMinute[]> {
  const { endAt, minutes: span } = window;
  if (!Number.isInteger(span) || span < 1 || span > MAX_PROGRESS_MINUTES || !Number.isFinite(endAt)) {
    throw new RangeError(`a progress window is 1 to ${MAX_PROGRESS_MINUTES} minutes ending at a time`);
  }
  const last = Math.floor(endAt / 60_000);
  const minuteIds = Array.from({ length: span }, (_, i) => last - span + 1 + i);
  const fields = minuteIds.flatMap((minute) => [`a:${minute}`, `c:${minute}`]);
  const values = await ctx.redis.hmget(progressKey(ctx, batch), ...fields);
  const found: ProgressMinute[] = [];
  minuteIds.forEach((minute, i) => {
    const archived = Number(values[2 * i] ?? 0) || 0;
    const credits = Number(values[2 * i + 1] ?? 0) || 0;
    if (archived !== 0 || credits !== 0) found.push({ at: minute * 60_000, archived, credits });
  });
  return found;
}
