import { fleetLines } from "./fleet-state.js";
import type { AllStatus, BatchStatus } from "./status.js";

/**
 * Status for people: a block per batch, a table of batches, and one-line progress for `--watch`.
 * Pure functions of a status snapshot, so they are tested without Redis or a terminal.
 */

const BAR_WIDTH = 30;

/** Progress bar glyphs, in drawing order: finished states first, then work still ahead. */
const SEGMENTS = [
  ["archived", "█"],
  ["failed", "x"],
  ["cancelled", "-"],
  ["archiving", "▓"],
  ["generating", "▒"],
  ["submitted", "▒"],
  ["queued", "░"],
] as const;

/** `[███▓▒░░]`, each state's share of the rows, always exactly `width` cells. */
function progressBar(status: BatchStatus, width = BAR_WIDTH): string {
  if (status.total <= 0) return `[${" ".repeat(width)}]`;
  let bar = "";
  let before = 0;
  for (const [state, glyph] of SEGMENTS) {
    const after = before + status[state];
    // Cumulative rounding: the cells always add up to `width`.
    const cells = Math.round((after / status.total) * width) - Math.round((before / status.total) * width);
    bar += glyph.repeat(Math.max(0, cells));
    before = after;
  }
  return `[${bar.padEnd(width, " ").slice(0, width)}]`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** Credits with at most two decimals, no trailing zeros. */
export function formatCredits(value: number): string {
  return String(Math.round(value * 100) / 100);
}

function inProgress(s: BatchStatus): number {
  return s.submitted + s.generating + s.archiving;
}

function percentFinished(s: BatchStatus): number {
  if (s.total <= 0) return 100;
  return Math.floor(((s.archived + s.failed + s.cancelled) / s.total) * 100);
}

/** `150 archived · 3 failed · 0 cancelled · 35 in progress · 12 queued (77% finished)` */
function countsLine(s: BatchStatus): string {
  return (
    `${s.archived}/${s.total} archived · ${s.failed} failed · ${s.cancelled} cancelled · ` +
    `${inProgress(s)} in progress · ${s.queued} queued (${percentFinished(s)}% finished)`
  );
}

/** The oldest finished image still waiting for its archive, with a warning past 24 h. */
function unarchivedLines(s: BatchStatus): string[] {
  const o = s.oldestUnarchived;
  if (!o) return [];
  const lines = [
    `oldest unarchived image: row ${o.rowId}, finished ${o.completedAt} (${formatDuration(o.ageMs)} ago), ${formatDuration(o.timeLeftMs)} left before KIE deletes it`,
  ];
  if (o.warning) {
    lines.push(
      `WARNING: row ${o.rowId} finished ${formatDuration(o.ageMs)} ago and is not archived yet; KIE's docs say result URLs may last only a day. Are archive workers running?`,
    );
  }
  return lines;
}

/** Rows the reconciler gave back a lost job: a worker died mid-step; shown once it happened. */
function repairedLines(s: BatchStatus): string[] {
  if (!s.repaired) return [];
  return [
    `  repaired by the reconciler: ${s.repaired} rows (a worker stopped between a row's state change and its next job)`,
  ];
}

/** A batch `purge` marked: what is stopped, and what finishes it. */
function purgingLines(s: BatchStatus): string[] {
  if (!s.purging) return [];
  return [
    `  being purged since ${s.purging}: nothing of it is created, enqueued, retried or repaired; if no purge runs now, one was cut short: \`kie-batch purge ${s.batch} --yes\` finishes it`,
  ];
}

/** A batch `cancel` ran on: what that still stops, and how to lift it. */
function cancelledLines(s: BatchStatus): string[] {
  if (!s.cancelledAt) return [];
  return [
    `  cancelled at ${s.cancelledAt}: no row of it is resubmitted, woken over the budget or fed from its window; \`kie-batch retry ${s.batch}\` lifts that`,
  ];
}

/** Rows archived as copies of earlier images (reuse across batches), or that the batch never reuses. */
function reusedLines(s: BatchStatus): string[] {
  if (s.noReuse) return ["  reuse: off for this batch (--no-reuse): every row is created"];
  if (!s.reused) return [];
  return [
    `  reused: ${s.reused} of the archived rows are copies of earlier images (same request and seed), 0 credits`,
  ];
}

/** What the uncertain submits hold of the budget, when they hold anything. */
function uncertainCost(s: BatchStatus): string {
  return s.creditsUncertain ? ` (${formatCredits(s.creditsUncertain)} credits held against the budget)` : "";
}

/** The full block of `status BATCH`. */
export function batchLines(s: BatchStatus, options: { queuePrefix?: string } = {}): string[] {
  const budget = s.budget === null ? "none" : formatCredits(s.budget);
  const lines = [
    `batch ${s.batch} · ${s.total} rows${s.file ? ` · manifest ${s.file}` : ""} · created ${s.createdAt}${s.finishedAt ? ` · finished ${s.finishedAt}` : ""}`,
    `  ${progressBar(s)} ${countsLine(s)}`,
    `  states: queued ${s.queued}, submitted ${s.submitted}, generating ${s.generating}, archiving ${s.archiving}, archived ${s.archived}, failed ${s.failed}, cancelled ${s.cancelled}`,
    `  credits: estimated ${formatCredits(s.creditsEstimated)}, reserved ${formatCredits(s.creditsReserved)}, spent ${formatCredits(s.creditsSpent)}; budget ${budget}`,
    `  waiting for budget: ${s.waitingBudget} rows · uncertain submits (maybe paid twice): ${s.uncertain}${uncertainCost(s)} · resubmits: ${s.resubmits}`,
    ...repairedLines(s),
    ...purgingLines(s),
    ...cancelledLines(s),
    ...reusedLines(s),
    ...unarchivedLines(s).map((line) => `  ${line}`),
  ];
  if (s.failed > 0 && s.finished) {
    lines.push(
      `  ${s.failed} rows failed: see \`kie-batch results ${s.batch}\`, retry with \`kie-batch retry ${s.batch}\``,
    );
    // A finished batch holds reservations for failed rows whose tasks KIE may still charge (failed
    // at KIE_MAX_WAIT: late checks, poll-late.ts; or after a status error, until a retry), or for
    // a moment before the reconciler gives one back. Not for a float's residue.
    if (s.creditsReserved > 1e-9) {
      lines.push(
        `  ${formatCredits(s.creditsReserved)} credits still held by failed rows whose tasks KIE may still charge: a row failed at KIE_MAX_WAIT is checked again until about a day after its submit and archived if its task finishes; otherwise \`kie-batch retry ${s.batch}\` polls it again`,
      );
    }
  }
  if (s.accounts) {
    const fleet = {
      paused: s.paused,
      archivePaused: s.archivePaused ?? null,
      accounts: s.accounts,
      ...(s.queuesPaused ? { queuesPaused: s.queuesPaused } : {}),
      ...(s.keyWaits ? { keyWaits: s.keyWaits } : {}),
    };
    lines.push(...fleetLines(fleet, options.queuePrefix));
  }
  return lines;
}

const COLUMNS = [
  "BATCH",
  "ROWS",
  "QUEUED",
  "ACTIVE",
  "ARCHIVED",
  "FAILED",
  "CANCELLED",
  "SPENT/EST",
  "BUDGET",
];

/** `status` without a batch: one line per batch, then the fleet's state. */
export function allLines(all: AllStatus, options: { queuePrefix?: string } = {}): string[] {
  const rows = all.batches.map((s) => [
    s.batch,
    String(s.total),
    String(s.queued),
    String(inProgress(s)),
    String(s.archived),
    String(s.failed),
    String(s.cancelled),
    `${formatCredits(s.creditsSpent)}/${formatCredits(s.creditsEstimated)}`,
    s.budget === null ? "-" : formatCredits(s.budget),
    stateNote(s),
  ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i]!.length)));
  const pad = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i >= widths.length ? cell : i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!),
      )
      .join("  ");
  const out = all.batches.length === 0 ? ["no batches"] : [pad([...COLUMNS, "STATE"]), ...rows.map(pad)];
  out.push(...fleetLines(all, options.queuePrefix));
  return out;
}

function stateNote(s: BatchStatus): string {
  const notes = [s.finished ? "finished" : "in progress"];
  if (s.waitingBudget > 0) notes.push(`${s.waitingBudget} waiting for budget`);
  if (s.uncertain > 0) notes.push(`${s.uncertain} uncertain`);
  if (s.repaired) notes.push(`${s.repaired} repaired`);
  if (s.reused) notes.push(`${s.reused} reused`);
  if (s.oldestUnarchived?.warning) {
    notes.push(
      `WARNING: row ${s.oldestUnarchived.rowId} unarchived for ${formatDuration(s.oldestUnarchived.ageMs)}`,
    );
  }
  return notes.join(", ");
}

/** One line per batch for `--watch`: the bar on a terminal, plain text otherwise. */
export function watchLine(s: BatchStatus, bars: boolean): string {
  return bars ? `${s.batch} ${progressBar(s)} ${countsLine(s)}` : `${s.batch}: ${countsLine(s)}`;
}
