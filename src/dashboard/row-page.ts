/** One row in full: its image, its record, its neighbours (arrow keys), a retry if it failed. */
import { shownParams } from "../core/redact-url.js";
import type { RowRecord } from "../ledger/index.js";
import { formatCredits, formatDuration } from "../report/status-text.js";
import type { GalleryQuery } from "./gallery.js";
import { galleryHref } from "./gallery.js";
import { html, type SafeHtml } from "./html.js";
import { pageShell } from "./page.js";

export interface RowPageData {
  row: RowRecord;
  query: GalleryQuery;
  previous: RowRecord | null;
  next: RowRecord | null;
  /** The CSRF token of the retry form; null when actions are off. */
  csrf: string | null;
}

/** A row's page, keeping the gallery's filter so the neighbours are the filter's. */
export function rowHref(
  batch: string,
  rowId: string,
  query: Pick<GalleryQuery, "filter" | "search" | "order">,
): string {
  const gallery = galleryHref(batch, { filter: query.filter, search: query.search, order: query.order });
  const qs = gallery.includes("?") ? gallery.slice(gallery.indexOf("?")) : "";
  return `/batches/${encodeURIComponent(batch)}/rows/${encodeURIComponent(rowId)}${qs}`;
}

const TIMES = [
  ["queued", "createdAt"],
  ["submitted", "submittedAt"],
  ["generating", "generatingAt"],
  ["completed by KIE", "completedAt"],
  ["archived", "archivedAt"],
] as const;

function timings(row: RowRecord): SafeHtml {
  const start = row.createdAt;
  return html`${TIMES.filter(([, field]) => row[field] !== undefined).map(([label, field]) => {
    const at = row[field]!;
    return html`<tr><th scope="row">${label}</th><td>${new Date(at).toISOString()}${at > start ? html` <span class="muted">(+${formatDuration(at - start)})</span>` : ""}</td></tr>`;
  })}`;
}

export function renderRowPage(data: RowPageData): string {
  const { row, query } = data;
  const batch = row.batch;
  const base = `/batches/${encodeURIComponent(batch)}/rows/${encodeURIComponent(row.id)}`;
  const neighbour = (r: RowRecord | null, rel: "prev" | "next", label: string) =>
    r
      ? html`<a rel="${rel}" class="${rel}" href="${rowHref(batch, r.id, query)}" title="${r.prompt}">${label}</a>`
      : html`<span class="muted ${rel}">${label}</span>`;
  const image = row.images[0];
  return pageShell(
    `${row.id} · ${batch} · kie-batch`,
    html`<header>
  <h1><a href="/">kie-batch</a> / <a href="${galleryHref(batch, query)}">${batch}</a> / <span class="row-id">${row.id}</span></h1>
  <nav class="neighbours">${neighbour(data.previous, "prev", "← previous")} · ${neighbour(data.next, "next", "next →")} <span class="muted">(arrow keys)</span></nav>
</header>
<main class="row-detail">
  <div class="full">${
    image
      ? html`<a href="${base}/image/0"><img class="full-image" src="${base}/image/0" alt="${row.prompt}"></a>${row.images.length > 1 ? html`<p>${row.images.slice(1).map((_, i) => html`<a href="${base}/image/${i + 1}">image ${i + 2}</a> `)}</p>` : ""}`
      : html`<p class="no-image state-${row.status}">No archived image: the row is <strong class="state">${row.status}</strong>.</p>`
  }</div>
  <div class="record">
  ${row.error ? html`<div class="warning"><strong>Error</strong><p class="error row-error">${row.error}</p></div>` : ""}
  ${
    row.status === "failed" && data.csrf !== null
      ? html`<form method="post" action="/batches/${encodeURIComponent(batch)}/retry" class="retry"><input type="hidden" name="csrf" value="${data.csrf}"><input type="hidden" name="scope" value="row"><input type="hidden" name="row" value="${row.id}"><button type="submit">Retry this row</button></form>`
      : ""
  }
  <table class="record">
    <tr><th scope="row">state</th><td><span class="badge state-${row.status}">${row.status}</span></td></tr>
    <tr><th scope="row">prompt</th><td class="prompt">${row.prompt}</td></tr>
    <tr><th scope="row">manifest line</th><td>${row.line}</td></tr>
    <tr><th scope="row">parameters</th><td><code>${JSON.stringify(shownParams(row.params))}</code></td></tr>
    ${Object.entries(row.metadata).map(([k, v]) => html`<tr><th scope="row">${k}</th><td class="metadata">${v}</td></tr>`)}
    <tr><th scope="row">task</th><td>${row.taskId ? html`<code>${row.taskId}</code>` : "none"}${row.taskIds.length > 1 ? html` <span class="muted">(${row.taskIds.length} tasks: ${row.taskIds.join(", ")})</span>` : ""}</td></tr>
    ${row.reusedFrom ? html`<tr><th scope="row">reused from</th><td><a href="/batches/${row.reusedFrom.split("/").map(encodeURIComponent).join("/rows/")}">${row.reusedFrom}</a> <span class="muted">(a copy of that row's image: no create, 0 credits)</span></td></tr>` : ""}
    <tr><th scope="row">credits</th><td>${formatCredits(row.creditsSpent)} spent${row.creditsReserved ? ` · ${formatCredits(row.creditsReserved)} reserved` : ""} <span class="muted">(estimated ${formatCredits(row.estimatedCredits)})</span></td></tr>
    ${
      image
        ? html`<tr><th scope="row">checksum</th><td><code>sha256:${image.sha256}</code> · ${image.bytes} bytes · ${image.contentType}</td></tr>
    <tr><th scope="row">location</th><td><code>${image.location}</code></td></tr>`
        : ""
    }
    ${timings(row)}
  </table>
  </div>
</main>
<script src="/static/dashboard.js"></script>`,
  );
}

/** The page's one script: the arrow keys follow the previous/next links. */
export const DASHBOARD_SCRIPT = `document.addEventListener("keydown", function (event) {
  if (event.altKey || event.ctrlKey || event.metaKey || event.target.closest("input, textarea")) return;
  var rel = event.key === "ArrowLeft" ? "prev" : event.key === "ArrowRight" ? "next" : null;
  var link = rel && document.querySelector('a[rel="' + rel + '"]');
  if (link) location.href = link.href;
});
`;
