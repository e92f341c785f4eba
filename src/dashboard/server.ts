import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createDashboardApp, type DashboardAppOptions } from "./app.js";

export interface DashboardOptions extends DashboardAppOptions {
  /** 0 picks a free port. @defaultValue 3000 */
  port?: number;
  /** The dashboard has no login: keep it on loopback unless something in front guards it. @defaultValue "127.0.0.1" */
  host?: string;
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

/** Serves the dashboard until `close()`; the caller owns the Redis connection and the queues. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? "127.0.0.1";
  const requested = options.port ?? 3000;
  const server: Server = createServer(createDashboardApp(options));
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new DashboardListenError(error.code ?? "unknown", host, requested, error.message));
    };
    server.once("error", onError);
    server.listen(requested, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
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
