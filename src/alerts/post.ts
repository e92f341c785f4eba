import { Agent, request } from "undici";

/** Sends one JSON body; resolves with the HTTP status, rejects on network errors and on abort. */
export type PostJson = (body: string, signal: AbortSignal) => Promise<number>;

export interface WebhookPoster {
  post: PostJson;
  close(): Promise<void>;
}

/**
 * POSTs to the alert webhook (KIE_ALERT_WEBHOOK_URL) over a connection pool of its own, so a
 * receiver that hangs holds none of KIE's or S3's sockets. Redirects are not followed.
 */
export function webhookPoster(url: string, options: { timeoutMs: number }): WebhookPoster {
  const agent = new Agent({
    connect: { timeout: options.timeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connections: 2,
  });
  let closing: Promise<void> | undefined;
  return {
    async post(body, signal) {
      try {
        const response = await request(url, {
          method: "POST",
          body,
          headers: { "content-type": "application/json", "user-agent": "kie-batch" },
          signal,
          dispatcher: agent,
        });
        await response.body.dump().catch(() => undefined);
        return response.statusCode;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        throw safeError(error, url);
      }
    },
    close() {
      // destroy, not close: close waits for requests in flight, and a hung receiver never answers.
      closing ??= agent.destroy().catch(() => undefined);
      return closing;
    },
  };
}

/** The part of the webhook URL that may be logged: Slack-style URLs carry their secret in the path. */
export function webhookOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "[unparseable url]";
  }
}

/**
 * A network error as it may be logged: name, code and message, with the URL's path (its secret,
 * for Slack-style URLs) cut out; nothing else of undici's error (sockets, requests) is kept.
 */
export function safeError(error: unknown, url: string): Error {
  const { name, code, message } = (error ?? {}) as { name?: unknown; code?: unknown; message?: unknown };
  let text = typeof message === "string" ? message : String(error);
  const origin = webhookOrigin(url);
  for (const secret of [url, url.slice(origin.length)]) {
    if (secret.length > 1) text = text.split(secret).join("/[redacted]");
  }
  const safe = new Error(`alert webhook ${origin}: ${text}`);
  safe.name = typeof name === "string" ? name : "Error";
  if (typeof code === "string") (safe as Error & { code?: string }).code = code;
  return safe;
}
