import { type ArchivePauseView, keyWaitWords, type PauseView } from "../report/fleet-state.js";
import { formatCredits, formatDuration } from "../report/status-text.js";
import { html, raw, type SafeHtml } from "./html.js";
import type { BatchOverview, Overview, QueueOverview } from "./overview.js";
import { STYLESHEET } from "./style.js";

export interface PageOptions {
  /** Seconds between reloads of the page. @defaultValue 5 */
  refreshSeconds?: number;
  /** Where bull-board is mounted. @defaultValue "/queues" */
  boardPath?: string;
  /** Error messages longer than this are cut on the page (the JSON has them whole). @defaultValue 400 */
  errorChars?: number;
}

/** A page of the dashboard other than the overview: the stylesheet, a title, a body. */
export function pageShell(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${raw(STYLESHEET)}</style>
</head>
<body>
${body}
</body>
</html>
`.text;
}

/** Prompts are cut to this on the page (a failure's error matters more). */
const PROMPT_CHARS = 80;

/** Row states in drawing order: finished first, then work still ahead (as `status` draws its bar). */
const STATES = ["archived", "failed", "cancelled", "archiving", "generating", "submitted", "queued"] as const;

/** The whole overview page. Every value goes through `html`, so user data is always text. */
export function renderOverviewPage(overview: Overview, options: PageOptions = {}): string {
  const refresh = options.refreshSeconds ?? 5;
  const board = options.boardPath ?? "/queues";
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh > 0 ? html`<meta http-equiv="refresh" content="${refresh}">` : ""}
<title>kie-batch · ${overview.queuePrefix}</title>
<style>${raw(STYLESHEET)}</style>
</head>
<body>
<header>
  <h1>kie-batch</h1>
  <span class="muted">queue prefix <code>${overview.queuePrefix}</code></span>
  <nav><a href="${board}">Queues (bull-board)</a> · <a href="/api/batches">JSON</a></nav>
  <span class="muted updated">updated ${overview.generatedAt}${refresh > 0 ? ` · refreshes every ${refresh} s` : ""}</span>
</header>
<main>
${archiveBanner(overview.archivePaused, overview.batches)}
${fleetSection(overview)}
${queuesSection(overview.queues, overview.queuesPaused ?? [])}
<section aria-labelledby="batches-title">
  <h2 id="batches-title">Batches (${overview.batches.length})</h2>
  ${
    overview.batches.length === 0
      ? html`<p class="empty">No batches under queue prefix <code>${overview.queuePrefix}</code>. Enqueue one with <code>kie-batch enqueue manifest.csv</code>.</p>`
      : overview.batches.map((batch) => batchCard(batch, options))
  }
</section>
</main>
</body>
</html>
`;
  return page.text;
}

function pauseText(p: PauseView): SafeHtml {
  return html`PAUSED since ${p.since} (${p.kind}): <span class="reason">${p.reason}</span>`;
}

/** A store outage, above everything: archiving waits fleet-wide until the store answers a probe. */
export function archiveBanner(
  paused: ArchivePauseView | null | undefined,
  batches: readonly Pick<BatchOverview, "archiving">[],
): SafeHtml {
  if (!paused) return html``;
  const waiting = batches.reduce((sum, b) => sum + b.archiving, 0);
  const next = paused.nextProbeAt ? html` Next probe ${paused.nextProbeAt}.` : "";
  return html`<section role="alert" class="banner archive-paused" aria-labelledby="archive-paused-title">
  <h2 id="archive-paused-title">Archiving paused <span class="badge paused">${paused.kind}</span></h2>
  <p>Since ${paused.since}: <span class="reason">${paused.reason}</span></p>
  <p>${waiting} finished images wait in <code>archiving</code>; none fails for it, and submissions go on. One worker probes the store; archiving resumes by itself when it answers.${next}</p>
</section>`;
}

function fleetSection(overview: Overview): SafeHtml {
  const items =
    overview.accounts.length === 0
      ? html`<li class="muted">No KIE account is known for this queue prefix yet (no worker has started; set KIE_API_KEY to see its pause state).</li>`
      : overview.accounts.map(({ accountId, paused }) =>
          paused
            ? html`<li class="paused">account <code>${accountId}</code>: ${pauseText(paused)}</li>`
            : html`<li>account <code>${accountId}</code>: submitting</li>`,
        );
  // A key rows wait for that no running worker holds: their polls wait, and only a worker with it helps.
  const waits = (overview.keyWaits ?? []).map(({ accountId, account, stage, lastAt }) => {
    const words = keyWaitWords(stage);
    return html`<li class="paused">API key <code>${accountId}</code>${account === undefined ? "" : html` (${account})`} ${words.held} (last at ${lastAt}): ${words.why}. Give a worker that key again (<code>KIE_API_KEYS</code>): ${words.after}.</li>`;
  });
  return html`<section aria-labelledby="fleet-title" class="${overview.paused ? "fleet paused-fleet" : "fleet"}">
  <h2 id="fleet-title">Fleet${overview.paused ? html` <span class="badge paused">submissions paused</span>` : ""}</h2>
  <ul>${items}${waits}</ul>
</section>`;
}

function queuesSection(queues: readonly QueueOverview[], paused: readonly string[]): SafeHtml {
  const cells = (q: QueueOverview) =>
    [q.waiting + q.prioritized, q.delayed, q.active, q.failed].map((n) => html`<td>${n}</td>`);
  const badge = (stage: string) =>
    paused.includes(stage) ? html` <span class="badge paused">paused in BullMQ</span>` : "";
  const note =
    paused.length > 0
      ? html`<p class="paused">Paused in BullMQ (bull-board's pause button): ${paused.join(", ")}. Their jobs wait; <code>kie-batch resume</code> or bull-board resumes them.</p>`
      : "";
  return html`<section aria-labelledby="queues-title">
  <h2 id="queues-title">Queues</h2>${note}
  <table class="queues">
    <thead><tr><th>stage</th><th>waiting</th><th>delayed</th><th>active</th><th>failed</th></tr></thead>
    <tbody>${queues.map((q) => html`<tr><th scope="row">${q.stage}${badge(q.stage)}</th>${cells(q)}</tr>`)}</tbody>
  </table>
</section>`;
}

function percent(part: number, total: number): string {
  return total > 0 ? `${((part / total) * 100).toFixed(3)}%` : "0%";
}

export function progressBar(b: Pick<BatchOverview, "total" | (typeof STATES)[number]>): SafeHtml {
  const label = STATES.filter((s) => b[s] > 0)
    .map((s) => `${b[s]} ${s}`)
    .join(", ");
  const segments = STATES.filter((s) => b[s] > 0).map(
    (s) => html`<span class="seg ${s}" style="width:${percent(b[s], b.total)}" title="${b[s]} ${s}"></span>`,
  );
  return html`<div class="bar" role="img" aria-label="${label || "no rows"}">${segments}</div>`;
}

function stateCounts(b: BatchOverview): SafeHtml {
  return html`<ul class="states">${STATES.map(
    (s) =>
      html`<li class="state-${s}"><span class="swatch ${s}"></span><span class="name">${s}</span> <strong data-state="${s}">${b[s]}</strong></li>`,
  )}</ul>`;
}

function finishedPercent(b: BatchOverview): number {
  return b.total > 0 ? Math.floor(((b.archived + b.failed + b.cancelled) / b.total) * 100) : 100;
}

function credits(b: BatchOverview): SafeHtml {
  const budget = b.budget === null ? "none" : formatCredits(b.budget);
  const overBudget =
    b.budget !== null && b.creditsSpent + b.creditsReserved + (b.creditsUncertain ?? 0) > b.budget;
  return html`<dl class="credits">
    <div><dt>estimated</dt><dd>${formatCredits(b.creditsEstimated)}</dd></div>
    <div><dt>reserved</dt><dd>${formatCredits(b.creditsReserved)}</dd></div>
    <div><dt>spent</dt><dd>${formatCredits(b.creditsSpent)}</dd></div>
    <div class="${overBudget ? "over" : ""}"><dt>budget</dt><dd>${budget}</dd></div>
  </dl>
  ${
    b.waitingBudget > 0 || b.uncertain > 0 || b.resubmits > 0
      ? html`<p class="muted">${b.waitingBudget} rows waiting for budget · ${b.uncertain} uncertain submits (maybe paid twice${b.creditsUncertain ? `; ${formatCredits(b.creditsUncertain)} credits held against the budget` : ""}) · ${b.resubmits} resubmits</p>`
      : ""
  }`;
}

function unarchived(b: BatchOverview): SafeHtml {
  const o = b.oldestUnarchived;
  if (!o) return html``;
  const line = html`Oldest unarchived image: row <code>${o.rowId}</code>, finished ${o.completedAt} (${formatDuration(o.ageMs)} ago), <strong class="time-left">${formatDuration(o.timeLeftMs)} left</strong> before KIE deletes it (${o.expiresAt}).`;
  if (!o.warning) return html`<p class="unarchived">${line}</p>`;
  return html`<div class="warning unarchived" role="alert">
    <strong>Warning: row <code>${o.rowId}</code> finished ${formatDuration(o.ageMs)} ago and is not archived yet.</strong>
    KIE's docs say result URLs may last only a day: are archive workers running?
    <p>${line}</p>
  </div>`;
}

/** At most `max` characters (code points: an emoji is never cut in half). */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max).join("")}…` : text;
}

function failures(b: BatchOverview, options: PageOptions): SafeHtml {
  if (b.failed === 0) return html``;
  const max = options.errorChars ?? 400;
  const more = b.failed - b.failures.length;
  return html`<details class="failures" open>
    <summary>${b.failed} failed ${b.failed === 1 ? "row" : "rows"}</summary>
    <ol>${b.failures.map(
      (f) =>
        html`<li><code>${f.rowId}</code> <span class="muted">(line ${f.line}, prompt “<span class="prompt">${shorten(f.prompt, PROMPT_CHARS)}</span>”)</span>: <span class="error">${f.error ? shorten(f.error, max) : "(no message)"}</span></li>`,
    )}</ol>
    ${more > 0 ? html`<p class="muted">and ${more} more: <code>kie-batch results ${b.batch}</code></p>` : ""}
    ${b.finished ? html`<p class="muted">Put them back into the pipeline with <code>kie-batch retry ${b.batch}</code>.</p>` : ""}
  </details>`;
}

function batchCard(b: BatchOverview, options: PageOptions): SafeHtml {
  const inFlight = b.submitted + b.generating + b.archiving;
  const paused = b.paused && !b.finished && b.queued > 0;
  const badge = b.finished
    ? html`<span class="badge finished">finished</span>`
    : html`<span class="badge running">in progress</span>`;
  return html`<article class="batch" id="batch-${b.batch}" data-batch="${b.batch}">
  <h3><a class="batch-name" href="/batches/${encodeURIComponent(b.batch)}">${b.batch}</a> ${badge}${paused ? html` <span class="badge paused">paused</span>` : ""}</h3>
  <p class="muted">${b.total} rows${b.file ? html` · manifest <code>${b.file}</code>` : ""} · created ${b.createdAt}${b.finishedAt ? ` · finished ${b.finishedAt}` : ""}</p>
  ${progressBar(b)}
  <p class="summary">${b.archived}/${b.total} archived · ${b.failed} failed · ${b.cancelled} cancelled · ${inFlight} in progress · ${b.queued} queued (${finishedPercent(b)}% finished)</p>
  ${stateCounts(b)}
  ${paused && b.paused ? html`<p class="paused">Submissions are paused for account <code>${b.paused.accountId}</code> (${b.paused.kind}) since ${b.paused.since}: <span class="reason">${b.paused.reason}</span>. ${b.queued} queued rows wait; <code>kie-batch resume</code> restarts them.</p>` : ""}
  ${credits(b)}
  ${unarchived(b)}
  ${failures(b, options)}
</article>`;
}
