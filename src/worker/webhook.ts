import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import { type JobKeyParts, parseJobKey } from "./jobs.js";

/** Callbacks signed longer ago than this (or this far in the future) are refused. */
const MAX_SIGNATURE_AGE_S = 5 * 60;
const MAX_BODY_BYTES = 256 * 1024;
/**
 * Sockets the receiver holds at once; Node closes any beyond at once (KIE calls back once per task
 * and tries again; a dropped callback only means the poll runs on its own schedule).
 */
const MAX_CONNECTIONS = 1_024;

export interface WebhookOptions {
  port: number;
  host?: string;
  ledger: Ledger;
  /** Where the row's delayed poll job is woken (the poll queue, in bull/queues.ts). */
  polls: PollWaker;
  /** How often a callback may wake one task's poll, fleet-wide (fleet/callback-limit.ts). */
  promotions: PromotionLimit;
  log: Logger;
  /** KIE_WEBHOOK_HMAC_KEY: when set, unsigned or wrongly signed callbacks get 401. */
  hmacKey?: string;
  now?: () => number;
}

/** Wakes a row's delayed poll job; the job id is derived from the key where the queue lives. */
export interface PollWaker {
  /** Runs the key's poll job now if it waits delayed; false when no poll job of it is delayed. */
  wakePoll(key: JobKeyParts): Promise<boolean>;
}

/** Grants a task's poll promotion at most once per interval across the fleet. */
interface PromotionLimit {
  tryPromote(taskId: string): Promise<boolean>;
  giveBack(taskId: string): Promise<void>;
}

export interface WebhookServer extends AsyncDisposable {
  port: number;
  close(): Promise<void>;
}

/** base64(HMAC-SHA256(taskId + "." + timestamp, key)), as KIE signs callbacks. */
export function webhookSignature(taskId: string, timestamp: string, key: string): string {
  return createHmac("sha256", key).update(`${taskId}.${timestamp}`).digest("base64");
}

/**
 * The callback receiver. A callback is only a hint: it promotes the row's delayed poll job (at
 * most once a minute per task), and the status call made with our own key decides what happened.
 * It answers fast, and the same callback twice changes nothing.
 */
export async function startWebhookServer(options: WebhookOptions): Promise<WebhookServer> {
  const now = options.now ?? Date.now;
  const server: Server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.log.error({ err: error }, "webhook handler failed");
      if (!res.headersSent) reply(res, 500, { error: "internal error" });
    });
  });
  // Reachable from the internet: a request gets 10 s whole, its headers 5 s (checked every
  // second: Node's default check every 30 s let a half-sent request hold a socket ~40 s), and a
  // flood of idle sockets is capped.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxConnections = MAX_CONNECTIONS;

  /** A wake that failed (Redis) spent nothing either: the promotion goes back, the error stands (500). */
  const giveBackThen =
    (taskId: string) =>
    async (error: unknown): Promise<never> => {
      await options.promotions.giveBack(taskId).catch(() => undefined);
      throw error;
    };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method === "GET" && path === "/healthz") return reply(res, 200, { ok: true });
    const candidates = keysFromPath(path);
    // Anything but a callback path is not here (/metrics lives on the admin port, never this one).
    if (candidates.length === 0) return reply(res, 404, { error: "no job key in the path" });
    if (req.method !== "POST") return reply(res, 405, { error: "POST a callback" });
    const body = await readBody(req);
    if (body === undefined) return reply(res, 413, { error: "body too large" });
    const taskId = taskIdOf(body);
    if (!taskId) return reply(res, 400, { error: "no taskId in the body" });

    if (options.hmacKey) {
      const timestamp = header(req, "x-webhook-timestamp");
      const signature = header(req, "x-webhook-signature");
      if (!timestamp || !signature) return reply(res, 401, { error: "missing signature" });
      const age = Math.abs(now() / 1000 - Number(timestamp));
      if (!/^\d+$/.test(timestamp) || age > MAX_SIGNATURE_AGE_S)
        return reply(res, 401, { error: "stale signature" });
      const expected = Buffer.from(webhookSignature(taskId, timestamp, options.hmacKey));
      const given = Buffer.from(signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
        return reply(res, 401, { error: "bad signature" });
      }
    }

    const key = await rowKnowing(options.ledger, candidates, taskId);
    if (!key) return reply(res, 404, { error: "unknown task" });
    // Accepted either way (KIE need not send it again): a task promoted within the interval
    // waits for its poll's own schedule, so callbacks cannot spend the account's status budget.
    if (!(await options.promotions.tryPromote(taskId))) {
      options.log.debug(
        { batch: key.batch, row: key.rowId, taskId },
        "callback too soon after the last: not promoted",
      );
      return reply(res, 200, { ok: true });
    }
    if (await options.polls.wakePoll(key).catch(giveBackThen(taskId))) {
      options.log.debug({ batch: key.batch, row: key.rowId, taskId }, "callback promoted the poll job");
    } else {
      // No poll job waiting delayed (it runs now, or is not added yet): nothing was spent, so a
      // callback sent again (KIE's retry, a duplicate) may still wake it within the interval.
      await options.promotions.giveBack(taskId);
      options.log.debug(
        { batch: key.batch, row: key.rowId, taskId },
        "callback: no delayed poll job to promote",
      );
    }
    return reply(res, 200, { ok: true });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}

/**
 * The candidate whose row holds `taskId` as the task of the path's lineage (`/r<n>`: the row's
 * n-th task): the ledger, not the path's shape, decides. A callback of an older task of the row
 * names the older lineage, whose poll job is long gone: it wakes nothing (nor spends the current
 * task's promotion under its own).
 */
async function rowKnowing(
  ledger: Ledger,
  candidates: JobKeyParts[],
  taskId: string,
): Promise<JobKeyParts | undefined> {
  for (const key of candidates) {
    // The row's tasks are in its hash: its state alone, without the prompt.
    const row = await ledger.getRowState(key.batch, key.rowId);
    if (row?.taskIds[key.resubmit] === taskId) return key;
  }
  return undefined;
}

/**
 * The job key is the last two or three path segments (`.../<batch>/<rowId>[/r<n>]`). Both are
 * candidates: behind a callback URL with a path, `/kie/b/r1` reads as resubmit 1 of row "b" in
 * batch "kie" as well as row "r1" of batch "b".
 */
function keysFromPath(path: string): JobKeyParts[] {
  const segments = path.split("/").filter(Boolean);
  const keys: JobKeyParts[] = [];
  for (const take of [3, 2]) {
    if (segments.length < take) continue;
    const key = parseJobKey(segments.slice(-take).join("/"));
    if (key) keys.push(key);
  }
  return keys;
}

function taskIdOf(body: unknown): string | undefined {
  const record = body as { data?: { taskId?: unknown }; taskId?: unknown } | undefined;
  const id = record?.data?.taskId ?? record?.taskId;
  return typeof id === "string" && id.length > 0 ? id : undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return {};
  }
}

function reply(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
