/**
 * Progress over time from the ledger's per-minute counters (ProgressMinute): an inline SVG of
 * archived rows per minute with credits spent as a running line, the current rate and an ETA.
 * Pure: it draws what it is given.
 */
import type { ProgressMinute } from "../ledger/progress.js";
import { html, raw, type SafeHtml } from "./html.js";

const MINUTE = 60_000;
/** Minutes the chart spans at most (the last hour), and at least (a batch younger than that). */
export const CHART_MINUTES = 60;
const MIN_CHART_MINUTES = 15;
/** The rate is taken over this many recent minutes. */
const RATE_MINUTES = 5;

export interface ProgressSummary {
  /** One entry per minute of the span, oldest first, zeros included. */
  minutes: ProgressMinute[];
  /** Archived rows per minute over the last RATE_MINUTES. */
  ratePerMinute: number;
  /** Milliseconds until the rows still to do are archived at that rate; null when unknown. */
  etaMs: number | null;
  /** Credits settled in the span. */
  creditsInSpan: number;
}

/**
 * Fills the span ending at `now` minute by minute (the last hour, or the batch's life since
 * `since` when shorter, 15 minutes at least); computes the rate and the ETA for `remaining` rows.
 */
export function summarizeProgress(
  recorded: readonly ProgressMinute[],
  now: number,
  remaining: number,
  since?: number,
): ProgressSummary {
  const lastMinute = Math.floor(now / MINUTE);
  const lived =
    since === undefined || Number.isNaN(since) ? CHART_MINUTES : lastMinute - Math.floor(since / MINUTE) + 1;
  const span = Math.max(MIN_CHART_MINUTES, Math.min(CHART_MINUTES, lived));
  const byMinute = new Map(recorded.map((m) => [Math.floor(m.at / MINUTE), m]));
  const minutes: ProgressMinute[] = [];
  for (let m = lastMinute - span + 1; m <= lastMinute; m++) {
    const found = byMinute.get(m);
    minutes.push({ at: m * MINUTE, archived: found?.archived ?? 0, credits: found?.credits ?? 0 });
  }
  // The current minute is partial: the rate counts it with the minutes before it.
  const recent = minutes.slice(-RATE_MINUTES);
  const ratePerMinute = recent.reduce((sum, m) => sum + m.archived, 0) / RATE_MINUTES;
  const etaMs =
    remaining <= 0 ? 0 : ratePerMinute > 0 ? Math.round((remaining / ratePerMinute) * MINUTE) : null;
  return {
    minutes,
    ratePerMinute,
    etaMs,
    creditsInSpan: minutes.reduce((sum, m) => sum + m.credits, 0),
  };
}

const W = 600;
const H = 120;

/** The chart as inline SVG: a bar per minute (archived), a line of credits spent since the span began. */
export function progressSvg(summary: ProgressSummary): SafeHtml {
  const { minutes } = summary;
  const maxArchived = Math.max(1, ...minutes.map((m) => m.archived));
  const bar = W / minutes.length;
  const bars = minutes.map((m, i) => {
    const h = (m.archived / maxArchived) * (H - 10);
    const title = `${new Date(m.at).toISOString().slice(11, 16)} UTC: ${m.archived} archived, ${round(m.credits)} credits`;
    return html`<rect class="bar-archived" x="${(i * bar + 1).toFixed(1)}" y="${(H - h).toFixed(1)}" width="${Math.max(1, bar - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>${title}</title></rect>`;
  });
  let running = 0;
  const total = Math.max(1e-9, summary.creditsInSpan);
  const points = minutes
    .map((m, i) => {
      running += m.credits;
      return `${((i + 1) * bar).toFixed(1)},${(H - (running / total) * (H - 10)).toFixed(1)}`;
    })
    .join(" ");
  const line = summary.creditsInSpan > 0 ? html`<polyline class="line-credits" points="${points}" />` : "";
  return html`<svg class="progress-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="archived per minute and credits spent, last ${minutes.length} minutes">${bars}${line}${raw("")}</svg>`;
}

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
