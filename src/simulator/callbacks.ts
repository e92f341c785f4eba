/**
 * Callback delivery as KIE does it: POST the market body to callBackUrl, signed when an HMAC key
 * is set, up to 3 attempts with a short backoff, then give up. Backoff is real time: it paces
 * HTTP calls, not the simulated model.
 */
import { createHmac } from "node:crypto";
import { Agent, request } from "undici";
import { systemClock } from "../core/clock.js";

const CALLBACK_ATTEMPTS = 3;
/** Waits before the 2nd and 3rd attempts, real ms. */
const BACKOFF_MS = [100, 300];
/** KIE gives a receiver 15 s to answer. */
const ATTEMPT_TIMEOUT_MS = 15_000;

/** base64(HMAC-SHA256(taskId + "." + timestamp, key)), the value of X-Webhook-Signature. */
function callbackSignature(taskId: string, timestampSeconds: number, key: string): string {
  return createHmac("sha256", key).update(`${taskId}.${timestampSeconds}`).digest("base64");
}

export interface CallbackEvents {
  /** One attempt answered 2xx. */
  sent(): void;
  /** One attempt failed. */
  failed(error: unknown): void;
  /** The last attempt failed: no more tries for this callback. */
  abandoned(): void;
}

export class CallbackSender {
  /** Own connection pool, so close() leaves no keep-alive socket behind. */
  private readonly agent = new Agent({ keepAliveTimeout: 1000, connections: 32 });
  private readonly abort = new AbortController();
  private readonly inProgress = new Set<Promise<void>>();

  constructor(
    private readonly events: CallbackEvents,
    private readonly hmacKey: string | undefined,
  ) {}

  /** Starts delivering in the background; close() stops it. */
  send(url: string, taskId: string, body: unknown): void {
    const delivery = this.deliver(url, taskId, JSON.stringify(body)).finally(() =>
      this.inProgress.delete(delivery),
    );
    this.inProgress.add(delivery);
  }

  async close(): Promise<void> {
    this.abort.abort(new Error("simulator closed"));
    await Promise.allSettled([...this.inProgress]);
    await this.agent.destroy();
  }

  private async deliver(url: string, taskId: string, payload: string): Promise<void> {
    const signal = this.abort.signal;
    for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS && !signal.aborted; attempt++) {
      try {
        await this.attempt(url, taskId, payload, signal);
        this.events.sent();
        return;
      } catch (error) {
        if (signal.aborted) return;
        this.events.failed(error);
        if (attempt === CALLBACK_ATTEMPTS) {
          this.events.abandoned();
          return;
        }
      }
      // close() ends the wait early (the sleep rejects); the loop then sees the aborted signal.
      await systemClock.sleep(BACKOFF_MS[attempt - 1] ?? 1000, signal).catch(() => undefined);
    }
  }

  private async attempt(url: string, taskId: string, payload: string, signal: AbortSignal): Promise<void> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.hmacKey !== undefined) {
      // A fresh timestamp per attempt, as a receiver checks it for freshness.
      const timestamp = Math.floor(Date.now() / 1000);
      headers["x-webhook-timestamp"] = String(timestamp);
      headers["x-webhook-signature"] = callbackSignature(taskId, timestamp, this.hmacKey);
    }
    const response = await request(url, {
      method: "POST",
      headers,
      body: payload,
      dispatcher: this.agent,
      signal: AbortSignal.any([signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
    });
    await response.body.dump();
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw new Error(`callback answered HTTP ${response.statusCode}`);
    }
  }
}
