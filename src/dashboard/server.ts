import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { isLoopbackHost } from "../core/loopback.js";
import { MIN_TOKEN_CHARS } from "./access.js";
import { createDashboardApp, type DashboardAppOptions } from "./app.js";
import { createThumbnailer, type ThumbnailerOptions } from "./thumbs.js";

export interface DashboardOptions extends DashboardAppOptions {
  /** 0 picks a free port. @defaultValue 3000 */
  port?: number;
  /** Any address but loopback needs `authToken`. @defaultValue "127.0.0.1" */
  host?: string;
  /** The thumbnail cache (a folder of its own under `parentDir`, removed on close). */
  thumbnails?: ThumbnailerOptions;
}

export interface Dashboard extends AsyncDisposable {
  /** `http://host:port/`, the port being the one bound. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections (bull-board's polls keep some alive). */
  close(): Promise<void>;
}

/** A listen failure worth a plain message (port taken, no permission, unknown address). */
export class DashboardListenError extends Error {
  override readonly name = "DashboardListenError";
  constructor(
    readonly code: string,
    host: string,
    port: number,
    reason: string,
  ) {
    super(`cannot listen on ${host}:${port} (${reason}): choose another --port or --host`);
  }
}

/** Options that would leave the dashboard open to others, or actions without a login. */
export class DashboardAccessError extends Error {
  override readonly name = "DashboardAccessError";
}

/** Refuses a non-loopback host without a token, a short token, and actions without a token. */
export function checkAccess(options: Pick<DashboardOptions, "host" | "authToken" | "allowActions">): void {
  const host = options.host ?? "127.0.0.1";
  const token = options.authToken;
  if (token !== undefined && token.length < MIN_TOKEN_CHARS) {
    throw new DashboardAccessError(`the dashboard's token must have at least ${MIN_TOKEN_CHARS} characters`);
  }
  if (token === undefined && !isLoopbackHost(host)) {
    throw new DashboardAccessError(
      `listening on ${host} needs a token: pass --auth-token or set KIE_DASHBOARD_TOKEN (or keep --host on loopback)`,
    );
  }
  if (options.allowActions && token === undefined) {
    throw new DashboardAccessError(
      "--allow-actions needs a token: pass --auth-token or set KIE_DASHBOARD_TOKEN",
    );
  }
}

/** Serves the dashboard until `close()`; the caller owns the Redis connection, the queues and the store. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  checkAccess(options);
  const host = options.host ?? "127.0.0.1";
  const requested = options.port ?? 3000;
  const thumbnailer =
    options.thumbnailer ?? (options.store ? await createThumbnailer(options.thumbnails) : undefined);
  const ownsThumbnailer = options.thumbnailer === undefined && thumbnailer !== undefined;
  // Checked every second (Node's default check every 30 s lets a half-sent request hold a socket
  // up to a minute), headers within 10 s.
  const server: Server = createServer(
    { connectionsCheckingInterval: 1_000 },
    createDashboardApp({ ...options, ...(thumbnailer ? { thumbnailer } : {}) }),
  );
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new DashboardListenError(error.code ?? "unknown", host, requested, error.message));
    };
    server.once("error", onError);
    server.listen(requested, host, () => {
      server.off("error", onError);
      resolve();
    });
  }).catch(async (error: unknown) => {
    if (ownsThumbnailer) await thumbnailer?.close();
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }).then(async () => {
      if (ownsThumbnailer) await thumbnailer?.close();
    });
    return closing;
  };
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
    port,
    close,
    [Symbol.asyncDispose]: close,
  };
}
