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

/** The batch's minutes with any progress, oldest first (one HGETALL of at most a field per minute and kind). */
export async function readProgress(ctx: LedgerContext, batch: string): Promise<ProgressMinute[]> {
  const hash = await ctx.redis.hgetall(progressKey(ctx, batch));
  const minutes = new Map<number, ProgressMinute>();
  for (const [field, value] of Object.entries(hash)) {
    const kind = field[0];
    const minute = Number(field.slice(2));
    if (field[1] !== ":" || !Number.isInteger(minute) || (kind !== "a" && kind !== "c")) continue;
    const entry = minutes.get(minute) ?? { at: minute * 60_000, archived: 0, credits: 0 };
    if (kind === "a") entry.archived += Number(value) || 0;
    else entry.credits += Number(value) || 0;
    minutes.set(minute, entry);
  }
  return [...minutes.values()].sort((a, b) => a.at - b.at);
}
