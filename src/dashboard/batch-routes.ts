/** The batch pages and their actions, as an express router (the images: image-routes.ts). */
import express, { type Request, type Response, Router } from "express";
import type { ArchiveStore } from "../archive/types.js";
import { type RetryDeps, type RetryReport, retryBatch, retryRow } from "../commands/retry.js";
import type { Clock } from "../core/clock.js";
import { type Ledger, LedgerError, type RowRecord } from "../ledger/index.js";
import { isOpsError } from "../report/errors.js";
import { readBatchStatus, type StatusDeps } from "../report/status.js";
import { type Access, csrfToken, csrfValid } from "./access.js";
import { renderBatchPage } from "./batch-page.js";
import { readFailureGroups } from "./failure-groups.js";
import { galleryHref, neighbours, PAGE_TILES, parseGalleryQuery, readMatches } from "./gallery.js";
import { findRow, imageRouter, notFound } from "./image-routes.js";
import { CHART_MINUTES, summarizeProgress } from "./progress-chart.js";
import { DASHBOARD_SCRIPT, renderRowPage } from "./row-page.js";
import type { Thumbnailer } from "./thumbs.js";

/** What retry from the page may ask for: the batch's failed rows, one of them, or those with one error. */
export interface RetryScope {
  rowId?: string;
  error?: string;
}

/**
 * Retries what a scope names: one row by itself (it reads that row only, and sweeps nothing), or
 * the batch's failed rows, all or those with one error (a walk of the failed index, then the
 * reconciler's sweep when `deps.reconcile` is given).
 */
export function retryInScope(deps: RetryDeps, batch: string, scope: RetryScope): Promise<RetryReport> {
  if (scope.rowId !== undefined) return retryRow(deps, batch, scope.rowId);
  const { error } = scope;
  return retryBatch(
    deps,
    batch,
    error === undefined ? undefined : (row: Pick<RowRecord, "error">) => (row.error ?? "") === error,
  );
}

export interface RetryOutcome {
  repolled: number;
  requeued: number;
  skipped: number;
  /** Queued rows of a batch still cancel-marked that the retry's sweep cancelled (no live job). */
  cancelled?: number;
}

export interface BatchRoutesOptions {
  ledger: Pick<
    Ledger,
    | "getRow"
    | "rowWindow"
    | "stateWindow"
    | "progress"
    | "statePages"
    | "ensureStateIndex"
    | "getBatch"
    | "listBatches"
    | "oldestUnarchived"
  >;
  status: StatusDeps;
  clock: Pick<Clock, "now">;
  access: Access;
  /** Where archived images are read from; absent: pages show no images. */
  store?: Pick<ArchiveStore, "get">;
  thumbnailer?: Thumbnailer;
  /** Retries failed rows; absent, or actions off: the page shows no buttons and POSTs are refused. */
  retry?: (batch: string, scope: RetryScope) => Promise<RetryOutcome>;
  /** Actions (retry) on: needs a token as well. */
  actions: boolean;
  /** Security headers of every HTML page. */
  pageHeaders: Record<string, string>;
}

export function batchRouter(options: BatchRoutesOptions): Router {
  const router = Router();
  const { ledger, access } = options;
  const subject = (req: Request) => (access.who(req) === "token" ? "token" : "loopback");
  const csrfFor = (req: Request): string | null =>
    options.actions && options.retry && access.who(req) === "token"
      ? csrfToken(access.key, subject(req))
      : null;
  const sendPage = (res: Response, page: string) =>
    res.status(200).set(options.pageHeaders).type("html").send(page);

  router.use(
    imageRouter({
      ledger,
      ...(options.store ? { store: options.store } : {}),
      ...(options.thumbnailer ? { thumbnailer: options.thumbnailer } : {}),
    }),
  );

  router.get("/static/dashboard.js", (_req, res) => {
    res.set({ "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff" });
    res.type("application/javascript").send(DASHBOARD_SCRIPT);
  });

  router.get("/batches/:batch", async (req, res) => {
    const batch = req.params.batch!;
    const status = await batchStatus(options.status, batch);
    if (!status) return notFound(res, `no batch ${batch}`);
    const query = parseGalleryQuery(req.query as Record<string, unknown>);
    const remaining = status.queued + status.submitted + status.generating + status.archiving;
    const now = options.clock.now();
    const [page, minutes, failures] = await Promise.all([
      readMatches(ledger, batch, query, PAGE_TILES),
      ledger.progress(batch, { endAt: now, minutes: CHART_MINUTES }),
      status.failed > 0 ? readFailureGroups(ledger, batch) : { groups: [], read: 0, complete: true },
    ]);
    sendPage(
      res,
      renderBatchPage({
        status,
        query,
        page,
        progress: summarizeProgress(minutes, now, remaining, Date.parse(status.createdAt)),
        failures,
        csrf: csrfFor(req),
        ...noticeOf(req.query as Record<string, unknown>),
      }),
    );
  });

  router.get("/api/batches/:batch/progress", async (req, res) => {
    const batch = req.params.batch!;
    const status = await batchStatus(options.status, batch);
    if (!status) return void res.status(404).json({ error: `no batch ${batch}` });
    const remaining = status.queued + status.submitted + status.generating + status.archiving;
    const now = options.clock.now();
    const summary = summarizeProgress(
      await ledger.progress(batch, { endAt: now, minutes: CHART_MINUTES }),
      now,
      remaining,
      Date.parse(status.createdAt),
    );
    res.set("Cache-Control", "no-store").json({ batch, ...summary });
  });

  router.get("/batches/:batch/rows/:row", async (req, res) => {
    const row = await findRow(ledger, req.params.batch!, req.params.row!);
    if (!row) return notFound(res, `no row ${req.params.row} in batch ${req.params.batch}`);
    const query = parseGalleryQuery(req.query as Record<string, unknown>);
    const { previous, next } = await neighbours(ledger, row, query);
    sendPage(res, renderRowPage({ row, query, previous, next, csrf: csrfFor(req) }));
  });

  router.post(
    "/batches/:batch/retry",
    express.urlencoded({ extended: false, limit: "16kb" }),
    async (req: Request, res: Response) => {
      const batch = (req.params as Record<string, string>).batch!;
      if (!options.actions || !options.retry) {
        return void res
          .status(403)
          .type("text/plain")
          .send("kie-batch dashboard: actions are off (start it with --allow-actions and --auth-token)\n");
      }
      if (access.who(req) !== "token") {
        return void res.status(403).type("text/plain").send("kie-batch dashboard: actions need the token\n");
      }
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (!csrfValid(access.key, subject(req), body.csrf)) {
        return void res
          .status(403)
          .type("text/plain")
          .send("kie-batch dashboard: stale or missing form token: reload the page\n");
      }
      const scope: RetryScope =
        body.scope === "row" && typeof body.row === "string"
          ? { rowId: body.row }
          : body.scope === "group" && typeof body.error === "string"
            ? { error: body.error }
            : {};
      if (body.scope !== "batch" && scope.rowId === undefined && scope.error === undefined) {
        return void res.status(400).type("text/plain").send("kie-batch dashboard: unknown retry scope\n");
      }
      let outcome: RetryOutcome;
      try {
        outcome = await options.retry(batch, scope);
      } catch (error) {
        // A batch a purge marked (runs, or was cut short): said as it is, nothing retried.
        if (error instanceof LedgerError && error.code === "batch_purging")
          return void res.status(409).type("text/plain").send(`kie-batch dashboard: ${error.message}\n`);
        throw error;
      }
      const back = new URL(galleryHref(batch, {}), "http://x");
      back.searchParams.set("retried", String(outcome.repolled + outcome.requeued));
      back.searchParams.set("skipped", String(outcome.skipped));
      if ((outcome.cancelled ?? 0) > 0) back.searchParams.set("cancelled", String(outcome.cancelled));
      res.redirect(303, back.pathname + back.search);
    },
  );

  return router;
}

async function batchStatus(deps: StatusDeps, batch: string) {
  try {
    return await readBatchStatus(deps, batch);
  } catch (error) {
    if (isOpsError(error)) return undefined;
    throw error;
  }
}

function noticeOf(query: Record<string, unknown>): { notice?: string } {
  const retried = Number(query.retried);
  if (!Number.isInteger(retried) || retried < 0) return {};
  const skipped = Number(query.skipped);
  const cancelled = Number(query.cancelled);
  // A retry that matched no row leaves a cancel's mark: its sweep cancelled what that cancel left.
  const swept =
    Number.isInteger(cancelled) && cancelled > 0
      ? `; the batch is still cancelled: ${cancelled} of its queued rows with no live job were cancelled, as its cancel would have`
      : "";
  return {
    notice: `Retry: ${retried} failed rows went back into the pipeline${Number.isInteger(skipped) && skipped > 0 ? `; ${skipped} skipped (a worker still held them): try again later` : ""}${swept}.`,
  };
}
