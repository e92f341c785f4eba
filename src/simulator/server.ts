/**
 * The simulator's HTTP face: routing, faults, maintenance and bearer auth around the engine,
 * on 127.0.0.1 with node:http. Order per API call: fault, maintenance (455), auth (401), body,
 * then the operation; the `/files/` CDN and `/__sim/` control skip maintenance and auth.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { systemClock } from "../core/clock.js";
import { applyControl } from "./control.js";
import { type ApiAnswer, answer, SimulatorEngine } from "./engine.js";
import { CODE_MESSAGES } from "./faults.js";
import { type BodyResult, readJsonBody, sendFile, sendJson, sendText } from "./http-io.js";
import type { ResolvedOptions } from "./options.js";
import { recordFault } from "./stats.js";
import type { CallFault, SimEndpoint } from "./types.js";
import { UPLOAD_PATH, UPLOADS_PREFIX } from "./uploads.js";

const NO_BODY: BodyResult = { ok: true, value: undefined };

type ApiRoute = {
  endpoint: Exclude<SimEndpoint, "image">;
  run: (key: string, body: unknown, query: URLSearchParams) => ApiAnswer | Promise<ApiAnswer>;
  body: boolean;
};

function apiRoutes(engine: SimulatorEngine): Record<string, ApiRoute> {
  return {
    "POST /api/v1/qwen/generate": {
      endpoint: "submit",
      body: true,
      run: (key, body) => engine.create("qwen", key, body),
    },
    "POST /api/v1/jobs/createTask": {
      endpoint: "submit",
      body: true,
      // image-to-image and edit fetch their input image before the task exists.
      run: (key, body) => engine.createFetchingInput(key, body),
    },
    "GET /api/v1/qwen/record-info": {
      endpoint: "status",
      body: false,
      run: (key, _b, q) => engine.status("qwen", q.get("taskId"), key),
    },
    "GET /api/v1/jobs/recordInfo": {
      endpoint: "status",
      body: false,
      run: (key, _b, q) => engine.status("jobs", q.get("taskId"), key),
    },
    "GET /api/v1/chat/credit": { endpoint: "credit", body: false, run: () => engine.credit() },
    "POST /api/v1/common/download-url": {
      endpoint: "download-url",
      body: true,
      run: (key, body) => engine.downloadUrl(body, key),
    },
  };
}

export interface RunningServer {
  server: Server;
  engine: SimulatorEngine;
  port: number;
  close(): Promise<void>;
}

export async function startServer(options: ResolvedOptions): Promise<RunningServer> {
  const server = createServer();
  // Hung and delayed answers wait on this, so close() never waits for them.
  const closing = new AbortController();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const engine = new SimulatorEngine(options, port);
  const routes = apiRoutes(engine);

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      // A bug in the simulator: answer 500 rather than leave the client hanging.
      if (!res.headersSent) sendJson(res, 500, { code: 500, msg: `simulator error: ${String(error)}` });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://simulator.invalid");
    const method = req.method ?? "GET";
    if (url.pathname.startsWith("/__sim/")) return handleControl(req, res, method, url.pathname);
    if (url.pathname.startsWith("/files/") && (method === "GET" || method === "HEAD")) {
      return handleFile(req, res, url);
    }
    if (method === "POST" && url.pathname === UPLOAD_PATH) return handleUpload(req, res);
    if (url.pathname.startsWith(UPLOADS_PREFIX) && (method === "GET" || method === "HEAD")) {
      return handleUploadedFile(req, res, url.pathname);
    }
    const route = routes[`${method} ${url.pathname}`];
    if (!route) return sendJson(res, 404, { code: 404, msg: `no route for ${method} ${url.pathname}` });
    if (route.endpoint === "status") engine.counters.statusCalls++;
    if (route.endpoint === "download-url") engine.counters.downloadUrlCalls++;

    // The request is read in full before any fault: a reset comes "after reading the request".
    const body = route.body ? await readJsonBody(req) : NO_BODY;
    const fault = await meetFault(route.endpoint, req, res);
    if (fault === "handled") return;
    const result = await runApi(req, route, body, url.searchParams);
    // The operation ran (a submit created and charged its task); the client never hears of it.
    if (fault === "reset-after") return void req.socket.destroy();
    sendJson(res, result.httpStatus, result.body);
  }

  function runApi(
    req: IncomingMessage,
    route: ApiRoute,
    body: BodyResult,
    query: URLSearchParams,
  ): ApiAnswer | Promise<ApiAnswer> {
    const refused = refusedCall(req);
    if (refused) return refused;
    if (!body.ok) return answer(400, body.msg);
    return route.run(bearerKey(req)!, body.value, query);
  }

  /** Maintenance (455) and auth (401), the same for every API call, uploads included. */
  function refusedCall(req: IncomingMessage): ApiAnswer | undefined {
    if (engine.maintenance) return answer(455, CODE_MESSAGES[455]!);
    const key = bearerKey(req);
    if (key === undefined || !engine.accepts(key)) {
      return answer(401, CODE_MESSAGES[401]!);
    }
    return undefined;
  }

  /** KIE's File Upload API (its own base URL on the real service; the same server here). */
  async function handleUpload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fault = await meetFault("upload", req, res);
    if (fault === "handled") return;
    const refused = refusedCall(req);
    if (refused) {
      req.resume();
      return sendJson(res, refused.httpStatus, { success: false, ...refused.body });
    }
    const result = await engine.uploads.accept(req);
    if (fault === "reset-after") return void req.socket.destroy();
    sendJson(res, result.httpStatus, result.body);
  }

  /** An uploaded file at its downloadUrl, until it expires. */
  function handleUploadedFile(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    const stored = engine.uploads.get(decodeURIComponent(pathname));
    if (!stored) {
      sendJson(res, 404, { code: 404, msg: "file not found or expired" });
      return;
    }
    res.writeHead(200, { "content-type": stored.mimeType, "content-length": stored.bytes.length });
    res.end(req.method === "HEAD" ? undefined : stored.bytes);
  }

  /** Plays the call's fault, if any (see applyFault). */
  async function meetFault(endpoint: SimEndpoint, req: IncomingMessage, res: ServerResponse) {
    const fault = engine.faults.next(endpoint);
    if (!fault) return undefined;
    recordFault(engine.counters, fault.kind);
    return applyFault(fault, req, res, closing.signal);
  }

  async function handleFile(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const fault = await meetFault("image", req, res);
    if (fault === "handled") return;
    if (fault === "reset-after") return void req.socket.destroy();
    const broken = engine.fileFault(url.pathname, url.searchParams);
    if (broken !== undefined) return sendJson(res, broken, { code: broken, msg: "file host error" });
    const file = await engine.file(url.pathname, url.searchParams);
    // A client gone (or the server closing) while its picture was drawn gets nothing sent or counted.
    if (req.destroyed || closing.signal.aborted) return;
    if (!file) return sendJson(res, 404, { code: 404, msg: "file not found or expired" });
    // Counted when the file starts: a client that has read it all must already see the count.
    if (req.method === "GET") engine.counters.downloads++;
    await sendFile(req, res, file);
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, method: string, path: string) {
    if (method === "GET" && path === "/__sim/stats") return sendJson(res, 200, engine.stats());
    if (method === "POST" && path === "/__sim/control") {
      const body = await readJsonBody(req);
      const error = body.ok ? applyControl(engine, body.value) : body.msg;
      if (error !== undefined) return sendJson(res, 400, { code: 400, msg: error });
      return sendJson(res, 200, { code: 200, msg: "success", data: engine.stats() });
    }
    return sendJson(res, 404, { code: 404, msg: `no route for ${method} ${path}` });
  }

  let closed: Promise<void> | undefined;
  return {
    server,
    engine,
    port,
    close() {
      closed ??= (async () => {
        closing.abort();
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        // close() alone waits for keep-alive and hung sockets; cut them now.
        server.closeAllConnections();
        await Promise.all([serverClosed, engine.close()]);
      })();
      return closed;
    },
  };
}

function bearerKey(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
  const key = match?.[1]?.trim();
  return key ? key : undefined;
}

/**
 * Plays one fault. Returns "handled" when the call is answered or abandoned here, "reset-after"
 * when the operation must run and the socket then be destroyed, undefined to answer normally.
 */
async function applyFault(
  fault: CallFault,
  req: IncomingMessage,
  res: ServerResponse,
  closing: AbortSignal,
): Promise<"handled" | "reset-after" | undefined> {
  switch (fault.kind) {
    case "code":
      sendJson(res, fault.httpStatus ?? 200, {
        code: fault.code,
        msg: fault.msg ?? CODE_MESSAGES[fault.code] ?? "error",
      });
      return "handled";
    case "http":
      sendText(res, fault.status);
      return "handled";
    case "reset":
      if (fault.afterCreate) return "reset-after";
      req.socket.destroy();
      return "handled";
    case "hang":
      // The socket stays open until the client gives up or the server closes.
      return "handled";
    case "delay":
      // Closing the server ends the delay early (the sleep rejects); the request is then dropped.
      await systemClock.sleep(fault.ms, closing).catch(() => undefined);
      return closing.aborted ? "handled" : undefined;
  }
}
