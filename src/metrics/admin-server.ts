import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../core/logger.js";
import { isLoopbackHost, isLoopbackHostHeader } from "../core/loopback.js";

/** Where the admin server binds unless told otherwise: metrics are for the operator, not the world. */
const DEFAULT_ADMIN_HOST = "127.0.0.1";

export interface AdminServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** @defaultValue DEFAULT_ADMIN_HOST (loopback) */
  host?: string;
  registry: Registry;
  log: Logger;
}

export interface AdminServer extends AsyncDisposable {
  port: number;
  host: string;
  close(): Promise<void>;
}

/**
 * The worker's admin port: `GET /metrics` (Prometheus text format) and `GET /healthz`. Kept apart
 * from the webhook receiver, which must face KIE (the internet) while metrics name batches and
 * accounts: `/metrics` is never served there.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const host = options.host ?? DEFAULT_ADMIN_HOST;
  // Checked every second (Node's default is every 30 s), headers within 10 s.
  const server: Server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.log.error({ err: error }, "admin server: request failed");
      if (!res.headersSent) reply(res, 500, "application/json", JSON.stringify({ error: "internal error" }));
      else res.destroy();
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  // Bound to loopback, it answers only to loopback names: a page of another site rebound to
  // 127.0.0.1 (DNS rebinding) would otherwise read /metrics (batch names, accounts, credits).
  const loopbackOnly = isLoopbackHost(host);
  let refusedHostSaid = false;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (loopbackOnly && !isLoopbackHostHeader(req.headers.host)) {
      // A scraper sees only "421": said once in the log too, with what to do.
      if (!refusedHostSaid) {
        refusedHostSaid = true;
        options.log.warn(
          { host: String(req.headers.host ?? "").slice(0, 100) },
          "admin port: a request named another host than localhost; bound to loopback it answers only to loopback names (send Host: localhost, or bind with --admin-host to the address scrapers use)",
        );
      }
      return reply(
        res,
        421,
        "text/plain",
        "kie-batch admin port: bound to loopback, it answers only to localhost, 127.0.0.1 or [::1]; bind it with --admin-host to the address scrapers use\n",
        req,
      );
    }
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== "/metrics" && path !== "/healthz") {
      return reply(res, 404, "application/json", JSON.stringify({ error: "not found" }));
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return reply(res, 405, "application/json", JSON.stringify({ error: "GET only" }));
    }
    if (path === "/healthz") return reply(res, 200, "application/json", JSON.stringify({ ok: true }), req);
    const text = await options.registry.metrics();
    return reply(res, 200, options.registry.contentType, text, req);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error) => options.log.error({ err: error }, "admin server error"));
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    return closing;
  };
  return { port: (server.address() as AddressInfo).port, host, close, [Symbol.asyncDispose]: close };
}

function reply(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  req?: IncomingMessage,
) {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(req?.method === "HEAD" ? undefined : body);
}
