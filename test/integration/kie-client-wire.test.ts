/**
 * The KIE client against small node:http servers, for what the simulator does not do: the exact
 * request on the wire, refused connections, stalled headers and bodies, gateway pages, oversized
 * answers, keep-alive. Real sockets throughout; undici is not mocked.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createKieClient, type KieClientOptions } from "../../src/kie/index.js";
import { kieErrorOf, TEST_API_KEY } from "../helpers/kie-errors.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A loopback server that records every request and answers with `handler`. */
async function serve(handler: Handler) {
  const seen: Seen[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on("connection", () => {
    connections += 1;
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });
  return { url, seen, connections: () => connections };
}

function client(baseUrl: string, options: Partial<KieClientOptions> = {}) {
  const kie = createKieClient({ baseUrl, apiKey: TEST_API_KEY, flavor: "qwen", ...options });
  cleanups.push(() => kie.close());
  return kie;
}

function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const ok =
  (data: unknown): Handler =>
  (_req, res) =>
    sendJson(res, { code: 200, msg: "success", data });

describe("requests on the wire", () => {
  it("qwen: flat seed names, bearer key, JSON body", async () => {
    const server = await serve(ok({ taskId: "q1" }));
    const kie = client(server.url);
    const taskId = await kie.submit({
      prompt: "a cat",
      acceleration_level: "high",
      output_format: "jpg",
      safety_check: true,
      callBackUrl: "https://hooks.example/kie",
    });
    expect(taskId).toBe("q1");
    const [request] = server.seen;
    expect(request).toMatchObject({ method: "POST", url: "/api/v1/qwen/generate" });
    expect(request?.headers.authorization).toBe(`Bearer ${TEST_API_KEY}`);
    expect(request?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request?.body ?? "")).toEqual({
      prompt: "a cat",
      acceleration_level: "high",
      output_format: "jpg",
      safety_check: true,
      callBackUrl: "https://hooks.example/kie",
    });
  });

  it("jobs: model + input with market names, callBackUrl beside them", async () => {
    const server = await serve(ok({ taskId: "j1" }));
    const kie = client(server.url, { flavor: "jobs" });
    await kie.submit({
      prompt: "a cat",
      image_size: "square_hd",
      num_inference_steps: 40,
      guidance_scale: 4,
      seed: 9,
      acceleration_level: "none",
      output_format: "jpg",
      safety_check: false,
      negative_prompt: "blur",
      callBackUrl: "https://hooks.example/kie",
    });
    const [request] = server.seen;
    expect(request?.url).toBe("/api/v1/jobs/createTask");
    expect(JSON.parse(request?.body ?? "")).toEqual({
      model: "qwen/text-to-image",
      input: {
        prompt: "a cat",
        image_size: "square_hd",
        num_inference_steps: 40,
        guidance_scale: 4,
        seed: 9,
        acceleration: "none",
        output_format: "jpeg",
        enable_safety_checker: false,
        negative_prompt: "blur",
      },
      callBackUrl: "https://hooks.example/kie",
    });
  });

  it("status, credit and download-url calls use their paths; the task id is URL-encoded", async () => {
    const server = await serve((req, res) => {
      if (req.url?.startsWith("/kie/api/v1/jobs/recordInfo")) {
        sendJson(res, { code: 200, msg: "success", data: { taskId: "a b/&c", state: "queuing" } });
      } else if (req.url === "/kie/api/v1/chat/credit")
        sendJson(res, { code: 200, msg: "success", data: 77 });
      else sendJson(res, { code: 200, msg: "success", data: "https://direct/x.png" });
    });
    // A base URL with a path prefix (a proxy) keeps the prefix.
    const kie = client(`${server.url}/kie/`, { flavor: "jobs" });
    expect(await kie.getTask("a b/&c")).toEqual({ taskId: "a b/&c", status: "generating", imageUrls: [] });
    expect(await kie.getCredits()).toBe(77);
    expect(await kie.refreshDownloadUrl("https://tempfile.kie.ai/x.png")).toBe("https://direct/x.png");
    expect(server.seen.map(({ method, url }) => `${method} ${url}`)).toEqual([
      "GET /kie/api/v1/jobs/recordInfo?taskId=a%20b%2F%26c",
      "GET /kie/api/v1/chat/credit",
      "POST /kie/api/v1/common/download-url",
    ]);
    expect(JSON.parse(server.seen[2]?.body ?? "")).toEqual({ url: "https://tempfile.kie.ai/x.png" });
  });

  it("sequential calls reuse keep-alive connections", async () => {
    const server = await serve(ok(5));
    const kie = client(server.url);
    for (let i = 0; i < 10; i += 1) await kie.getCredits();
    expect(server.seen).toHaveLength(10);
    // undici's Pool may open a second connection while the first one finishes its answer.
    expect(server.connections()).toBeLessThanOrEqual(2);
  });

  it("close() can be called twice and waits for nothing more", async () => {
    const server = await serve(ok(5));
    const kie = createKieClient({ baseUrl: server.url, apiKey: TEST_API_KEY, flavor: "qwen" });
    await kie.getCredits();
    await Promise.all([kie.close(), kie.close()]);
    const error = await kieErrorOf(kie.getCredits());
    expect(error).toMatchObject({ code: "network", maybeCreated: false });
  });
});

describe("wire failures and maybeCreated", () => {
  it("connection refused: retryable, and a submit certainly created nothing", async () => {
    const server = await serve(ok(1));
    const { url } = server;
    await cleanups.pop()?.();
    const error = await kieErrorOf(client(url).submit({ prompt: "x" }));
    expect(error).toMatchObject({ code: "network", retryable: true, maybeCreated: false });
    expect(error.cause).toMatchObject({ code: "ECONNREFUSED" });
  });

  it("headers never come: a submit times out and may have created", async () => {
    const server = await serve(() => {});
    const kie = client(server.url, { headersTimeoutMs: 150 });
    // undici's timeout timers tick every ~500 ms, so both calls run at once.
    const [submit, status] = await Promise.all([
      kieErrorOf(kie.submit({ prompt: "x" })),
      kieErrorOf(kie.getTask("t")),
    ]);
    expect(submit).toMatchObject({ code: "timeout", retryable: true, maybeCreated: true });
    expect(submit.cause).toMatchObject({ code: "UND_ERR_HEADERS_TIMEOUT" });
    expect(status).toMatchObject({ code: "timeout", retryable: true, maybeCreated: false });
  });

  it("a body that stalls half way: a submit times out and may have created", async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"code":200,"msg":"success","data":{"task');
    });
    const error = await kieErrorOf(client(server.url, { bodyTimeoutMs: 150 }).submit({ prompt: "x" }));
    expect(error).toMatchObject({ code: "timeout", retryable: true, maybeCreated: true });
    expect(error.cause).toMatchObject({ code: "UND_ERR_BODY_TIMEOUT" });
  });

  it("the socket closes after the request was read: a submit may have created", async () => {
    const server = await serve((req) => req.socket.destroy());
    const error = await kieErrorOf(client(server.url).submit({ prompt: "x" }));
    expect(error).toMatchObject({ code: "network", retryable: true, maybeCreated: true });
  });

  it.each([
    [502, true],
    [503, false],
    [504, true],
  ])("HTTP %i with an HTML page on submit: http_error, maybeCreated %s", async (status, maybeCreated) => {
    const server = await serve((_req, res) => {
      res.writeHead(status, { "content-type": "text/html" });
      res.end(`<html><body><h1>${status}</h1>\n<p>upstream</p></body></html>`);
    });
    const error = await kieErrorOf(client(server.url).submit({ prompt: "x" }));
    expect(error).toMatchObject({ code: "http_error", httpStatus: status, retryable: true, maybeCreated });
    expect(error.message).toContain("upstream");
  });

  it("an answer larger than the limit is refused as a bad response", async () => {
    const server = await serve((_req, res) => sendJson(res, { code: 200, data: "x".repeat(10_000) }));
    const error = await kieErrorOf(client(server.url, { maxResponseBytes: 1_000 }).getCredits());
    expect(error).toMatchObject({ code: "bad_response", retryable: true });
  });

  it("a caller's abort mid-call rejects with the caller's reason", async () => {
    let arrived = () => {};
    const reached = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const server = await serve(() => arrived());
    const controller = new AbortController();
    const pending = client(server.url).submit({ prompt: "x" }, controller.signal);
    await reached;
    const reason = new Error("stop");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});

describe("the key stays secret", () => {
  it("a server that echoes the Authorization header in every kind of answer never gets it printed", async () => {
    const echo = (req: IncomingMessage) => `auth was ${req.headers.authorization}`;
    const answers: Handler[] = [
      (req, res) => sendJson(res, { code: 401, msg: echo(req) }),
      (req, res) => sendJson(res, { code: 422, message: echo(req) }),
      (req, res) => sendJson(res, { code: 500, msg: echo(req) }, 500),
      (req, res) => {
        res.writeHead(502, { "content-type": "text/html", "x-echo": echo(req) });
        res.end(`<pre>${echo(req)}</pre>`);
      },
      (req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(echo(req));
      },
      (req, res) => sendJson(res, { code: 200, msg: echo(req), data: { nope: echo(req) } }),
    ];
    for (const answer of answers) {
      const server = await serve(answer);
      const error = await kieErrorOf(client(server.url).submit({ prompt: "x" }));
      expect(error.message).not.toContain(TEST_API_KEY);
    }
  });
});
