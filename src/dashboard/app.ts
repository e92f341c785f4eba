import type { Queue } from "bullmq";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { ArchiveStore } from "../archive/types.js";
import type { Clock } from "../core/clock.js";
import { isLoopbackHostHeader } from "../core/loopback.js";
import type { Ledger } from "../ledger/index.js";
import type { FleetState } from "../report/fleet-state.js";
import type { Stage } from "../worker/jobs.js";
import { createAccess, sameOriginWrite } from "./access.js";
import { batchRouter, type RetryOutcome, type RetryScope } from "./batch-routes.js";
import { bullBoardRouter } from "./bull-board.js";
import { createFailureReader } from "./failures.js";
import { loginRouter } from "./login.js";
import { readOverview } from "./overview.js";
import { renderOverviewPage } from "./page.js";
import type { Thumbnailer } from "./thumbs.js";

/** Where bull-board is mounted. */
const BOARD_PATH = "/queues";
/** How long `/healthz` waits for Redis's PONG. */
const PING_TIMEOUT_MS = 2_000;

/**
 * Our page loads nothing: no script, no image, no frame. Inline styles only (the stylesheet and
 * the bar widths), so injected markup could not run even if a value escaped its escaping.
 */
const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/**
 * The batch and row pages: images and the one script (the arrow keys) from this origin only,
 * forms posting only here. Still no inline script.
 */
const BATCH_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * bull-board's page: its own scripts, styles, icons and API from this origin, its stylesheet's
 * fonts from Google Fonts (it links them); no inline script, no frames.
 */
const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com data:; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

export interface DashboardAppOptions {
  queuePrefix: string;
  ledger: Pick<
    Ledger,
    | "getBatch"
    | "listBatches"
    | "oldestUnarchived"
    | "rows"
    | "statePages"
    | "ensureStateIndex"
    | "getRow"
    | "rowWindow"
    | "stateWindow"
    | "progress"
  >;
  queues: Record<Stage, Queue>;
  /** The pause state of the deployment's accounts. */
  fleet: () => Promise<FleetState>;
  /** Answers when Redis does (for `/healthz`). */
  ping: () => Promise<unknown>;
  /** @defaultValue systemClock's `now` */
  clock?: Pick<Clock, "now">;
  /** Seconds between reloads of the overview page; 0 turns them off. @defaultValue 5 */
  refreshSeconds?: number;
  /** Failed rows listed per batch. @defaultValue 10 */
  failuresShown?: number;
  /** Where the batch pages read archived images from; absent: they show none. */
  store?: Pick<ArchiveStore, "get">;
  /** Makes and caches the gallery's thumbnails (startDashboard makes one when `store` is given). */
  thumbnailer?: Thumbnailer;
  /** Retries failed rows from the batch page (all, one row, or those with one error). */
  retry?: (batch: string, scope: RetryScope) => Promise<RetryOutcome>;
  /**
   * Every page and API call needs this token (bearer header, or the login page's cookie); the
   * dashboard's health check excepted. @defaultValue none: loopback only (startDashboard refuses
   * another host without one)
   */
  authToken?: string;
  /** Retry buttons on the batch pages and bull-board's buttons; needs `authToken`. @defaultValue false */
  allowActions?: boolean;
  /**
   * Reverse proxies in front of the dashboard: the client's address (the login throttle's) is read
   * that many hops from the right of `X-Forwarded-For` (Express's "trust proxy"). @defaultValue 0:
   * the socket's address, whatever the header says (a client could forge it)
   */
  trustProxy?: number;
  /** Errors of the dashboard's own routes. @defaultValue ignored */
  onError?: (error: unknown, path: string) => void;
}

/** The dashboard as an express app: `/` and `/api/batches` of our own, bull-board at `/queues`, `/healthz`. */
export function createDashboardApp(options: DashboardAppOptions): Express {
  const clock = options.clock ?? { now: () => Date.now() };
  const failures = createFailureReader({
    ledger: options.ledger,
    clock,
    ...(options.failuresShown === undefined ? {} : { limit: options.failuresShown }),
  });
  const overview = () =>
    readOverview({
      status: {
        ledger: options.ledger,
        fleet: options.fleet,
        clock,
        queuePrefix: options.queuePrefix,
      },
      failures,
      queues: options.queues,
      queuePrefix: options.queuePrefix,
    });

  const access = createAccess({ token: options.authToken });
  const actions = options.allowActions === true && options.authToken !== undefined;
  const app = express();
  app.disable("x-powered-by");
  app.set("json spaces", 2);
  if (options.trustProxy) app.set("trust proxy", options.trustProxy);

  if (options.authToken === undefined) {
    // No token: loopback only, and only under a loopback name (DNS rebinding: access.ts).
    app.use((req, res, next) => {
      if (isLoopbackHostHeader(req.headers.host)) return next();
      res
        .status(421)
        .set("Cache-Control", "no-store")
        .type("text/plain")
        .send("kie-batch dashboard: without a token it answers only to localhost, 127.0.0.1 or [::1]\n");
    });
  }

  app.use((req, res, next) => {
    // Every answer: no type sniffing, and a CSP (a route with one of its own replaces it).
    res.set({
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy":
        req.path === BOARD_PATH || req.path.startsWith(`${BOARD_PATH}/`) ? BOARD_CSP : PAGE_CSP,
    });
    if (sameOriginWrite(req)) return next();
    res
      .status(403)
      .set("Cache-Control", "no-store")
      .type("text/plain")
      .send("kie-batch dashboard: a request from another site's page is refused\n");
  });

  app.get("/healthz", async (_req, res) => {
    try {
      await withTimeout(options.ping(), PING_TIMEOUT_MS);
      res.json({ ok: true, redis: "up" });
    } catch (error) {
      // Open to anyone, even with a token set: the driver's text (an internal address) stays out
      // of the answer, and goes to the operator's log.
      options.onError?.(error, "/healthz");
      res.status(503).json({ ok: false, redis: "down", error: "Redis is not answering" });
    }
  });
  app.use(loginRouter(access, { "Content-Security-Policy": BATCH_PAGE_CSP, "Cache-Control": "no-store" }));
  app.use((req, res, next) => access.require(req, res, next));

  app.get("/", async (_req, res) => {
    const page = renderOverviewPage(await overview(), {
      boardPath: BOARD_PATH,
      ...(options.refreshSeconds === undefined ? {} : { refreshSeconds: options.refreshSeconds }),
    });
    res
      .status(200)
      .set({
        "Content-Security-Policy": PAGE_CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      })
      .type("html")
      .send(page);
  });

  app.get("/api/batches", async (_req, res) => {
    res.set("Cache-Control", "no-store").json(await overview());
  });

  app.use(
    batchRouter({
      ledger: options.ledger,
      status: { ledger: options.ledger, fleet: options.fleet, clock, queuePrefix: options.queuePrefix },
      clock,
      access,
      actions,
      pageHeaders: {
        "Content-Security-Policy": BATCH_PAGE_CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      },
      ...(options.store ? { store: options.store } : {}),
      ...(options.thumbnailer ? { thumbnailer: options.thumbnailer } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
    }),
  );

  app.use(BOARD_PATH, bullBoardRouter({ ...options, readOnly: !actions, basePath: BOARD_PATH }));

  // Express's own handler would answer with a stack trace; ours says what failed, as text.
  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    options.onError?.(error, req.path);
    if (res.headersSent) return next(error);
    const status = isRedisDown(error) ? 503 : 500;
    const message = status === 503 ? `Redis is not answering: ${messageOf(error)}` : messageOf(error);
    if (req.path.startsWith("/api/")) res.status(status).json({ error: message });
    else res.status(status).type("text/plain").send(`kie-batch dashboard: ${message}\n`);
  });
  return app;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRedisDown(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === "MaxRetriesPerRequestError" ||
      /ECONNREFUSED|Connection is closed|Stream isn't writeable|no answer within/.test(error.message))
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
