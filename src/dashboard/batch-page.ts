/** The batch page: banners, progress over time, the gallery with its filters, failed rows grouped. */
import type { BatchStatus } from "../report/status.js";
import { formatCredits, formatDuration } from "../report/status-text.js";
import type { FailureGroups } from "./failure-groups.js";
import {
  FILTERS,
  type Filter,
  type GalleryPage,
  type GalleryQuery,
  galleryHref,
  SCAN_BUDGET,
} from "./gallery.js";
import { html, type SafeHtml } from "./html.js";
import { archiveBanner, pageShell, progressBar, shorten } from "./page.js";
import { type ProgressSummary, progressSvg } from "./progress-chart.js";
import { rowHref } from "./row-page.js";

export interface BatchPageData {
  status: BatchStatus;
  query: GalleryQuery;
  page: GalleryPage;
  progress: ProgressSummary;
  failures: FailureGroups;
  /** The CSRF token of the action forms; null when actions are off. */
  csrf: string | null;
  /** What the last action did (shown once, after its redirect). */
  notice?: string;
}

const FILTER_LABELS: Record<Filter, string> = {
  all: "all",
  archived: "archived",
  failed: "failed",
  "in-progress": "in progress",
  queued: "waiting",
  cancelled: "cancelled",
};

export function renderBatchPage(data: BatchPageData): string {
  const s = data.status;
  return pageShell(
    `${s.batch} · kie-batch`,
    html`<header>
  <h1><a href="/">kie-batch</a> / <span class="batch-name">${s.batch}</span></h1>
  <span class="muted">${s.total} rows${s.file ? html` · manifest <code>${s.file}</code>` : ""} · created ${s.createdAt}</span>
  <nav><a href="/api/batches/${encodeURIComponent(s.batch)}/progress">JSON</a></nav>
</header>
<main class="wide">
${data.notice ? html`<p class="notice" role="status">${data.notice}</p>` : ""}
${archiveBanner(s.archivePaused, [s])}
${s.paused && !s.finished ? html`<p class="paused banner-paused" role="alert">Submissions are paused (${s.paused.kind}) since ${s.paused.since}: <span class="reason">${s.paused.reason}</span>. ${s.queued} rows wait; <code>kie-batch resume</code> restarts them.</p>` : ""}
${progressBar(s)}
<p class="summary">${s.archived}/${s.total} archived · ${s.failed} failed · ${s.cancelled} cancelled · ${s.submitted + s.generating + s.archiving} in progress · ${s.queued} waiting · ${formatCredits(s.creditsSpent)} credits spent</p>
${progressSection(data.progress, s)}
${gallerySection(data)}
${failuresSection(data)}
</main>`,
  );
}

function progressSection(p: ProgressSummary, s: BatchStatus): SafeHtml {
  const eta = s.finished
    ? "finished"
    : p.etaMs === null
      ? "unknown (nothing archived in the last 5 minutes)"
      : formatDuration(p.etaMs);
  return html`<section class="progress" aria-labelledby="progress-title">
  <h2 id="progress-title">Progress over time</h2>
  <p><strong class="rate">${p.ratePerMinute.toFixed(1)}</strong> archived per minute (last 5 minutes) · ETA <strong class="eta">${eta}</strong> · ${formatCredits(p.creditsInSpan)} credits spent in the last ${p.minutes.length} minutes</p>
  ${progressSvg(p)}
  <p class="muted legend"><span class="swatch archived"></span>archived per minute <span class="swatch credits"></span>credits spent (running total)</p>
</section>`;
}

function gallerySection(data: BatchPageData): SafeHtml {
  const { query, page, status } = data;
  const batch = status.batch;
  const filters = FILTERS.map((f) =>
    f === query.filter
      ? html`<strong class="filter current" aria-current="true">${FILTER_LABELS[f]}</strong>`
      : html`<a class="filter" data-filter="${f}" href="${galleryHref(batch, { ...query, filter: f, after: undefined })}">${FILTER_LABELS[f]}</a>`,
  );
  const other = query.order === "latest" ? "manifest" : "latest";
  const tiles = page.rows.map((row) => {
    const href = rowHref(batch, row.id, query);
    const label = `${row.id}: ${row.prompt}`;
    if (row.status === "archived" && row.images.length > 0) {
      return html`<a class="tile" data-row="${row.id}" href="${href}" title="${label}"><img src="/batches/${encodeURIComponent(batch)}/rows/${encodeURIComponent(row.id)}/thumb/0" alt="${shorten(row.prompt, 120)}" width="256" height="256" loading="lazy"></a>`;
    }
    return html`<a class="tile no-image state-${row.status}" data-row="${row.id}" href="${href}" title="${label}"><span class="state">${row.status}</span><span class="prompt">${shorten(row.prompt, 90)}</span>${row.error ? html`<span class="error">${shorten(row.error, 120)}</span>` : ""}</a>`;
  });
  return html`<section class="gallery" aria-labelledby="gallery-title">
  <h2 id="gallery-title">Images</h2>
  <form class="controls" method="get" action="/batches/${encodeURIComponent(batch)}">
    <nav class="filters" aria-label="state">${filters}</nav>
    ${query.filter !== "all" ? html`<input type="hidden" name="state" value="${query.filter}">` : ""}
    ${query.order === "latest" ? html`<input type="hidden" name="order" value="latest">` : ""}
    <input type="search" name="q" value="${query.search}" placeholder="search prompt, id, metadata" aria-label="search">
    <button type="submit">Search</button>
    <a class="order" href="${galleryHref(batch, { ...query, order: other, after: undefined })}">${other === "latest" ? "latest rows first" : "manifest order"}</a>
  </form>
  ${
    tiles.length === 0
      ? html`<p class="empty">No rows match${query.search ? html` “${query.search}”` : ""} in the ${page.scanned} rows read${query.after !== undefined ? " from here" : ""}.</p>`
      : html`<div class="grid">${tiles}</div>`
  }
  <p class="muted pager">${query.after !== undefined ? html`<a href="${galleryHref(batch, { ...query, after: undefined })}">first page</a> · ` : ""}${page.next !== undefined ? html`<a class="next-page" rel="next" href="${galleryHref(batch, { ...query, after: page.next })}">next page</a> · ` : ""}filters and search read up to ${SCAN_BUDGET} rows of the batch per page, in ${query.order === "latest" ? "reverse manifest" : "manifest"} order, from where the last page stopped.</p>
</section>`;
}

function failuresSection(data: BatchPageData): SafeHtml {
  const { failures, status, csrf } = data;
  if (status.failed === 0) return html``;
  const batch = status.batch;
  const action = `/batches/${encodeURIComponent(batch)}/retry`;
  const form = (scope: string, fields: SafeHtml, label: string) =>
    csrf === null
      ? ""
      : html`<form method="post" action="${action}" class="retry"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="scope" value="${scope}">${fields}<button type="submit">${label}</button></form>`;
  return html`<section class="failures" aria-labelledby="failures-title">
  <h2 id="failures-title">Failed rows (${status.failed})</h2>
  ${form("batch", html``, `Retry all ${status.failed} failed rows`)}
  ${csrf === null ? html`<p class="muted">Retry from here needs <code>--allow-actions</code> and a token; or run <code>kie-batch retry ${batch}</code>.</p>` : ""}
  <table class="groups">
    <thead><tr><th>rows</th><th>error</th><th></th></tr></thead>
    <tbody>${failures.groups.map(
      (g) => html`<tr class="group">
      <td class="count">${g.count}</td>
      <td><span class="error">${g.error ? shorten(g.error, 400) : "(no message)"}</span><br><span class="muted">${g.rowIds.map((id, i) => html`${i > 0 ? ", " : ""}<a href="${rowHref(batch, id, { filter: "failed", search: "", order: "manifest" })}"><code>${id}</code></a>`)}${g.count > g.rowIds.length ? " …" : ""}</span></td>
      <td>${form("group", html`<input type="hidden" name="error" value="${g.error}">`, `Retry these ${g.count}`)}</td>
    </tr>`,
    )}</tbody>
  </table>
  ${failures.complete ? "" : html`<p class="muted">Grouped from the first ${failures.read} failed rows.</p>`}
</section>`;
}
