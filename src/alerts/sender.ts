import { answerWithin } from "../core/deadline.js";
import type { Logger } from "../core/logger.js";
import type { AlertClaims } from "./claims.js";
import { type AlertEvent, type AlertEventName, alertId, alertPayload } from "./events.js";
import type { PostJson } from "./post.js";
import { scrubbedJson } from "./scrub.js";

/** An event, or a function that builds it off the caller's path (reads Redis, say); undefined: nothing to say. */
type AlertSource = AlertEvent | (() => Promise<AlertEvent | undefined>);

export type AlertOutcome =
  /** The receiver answered 2xx. */
  | "sent"
  /** Claimed, but the receiver failed, timed out or answered otherwise: not retried (at most once). */
  | "failed"
  /** Another worker (or an earlier notice of this one) claimed the event. */
  | "duplicate"
  /** The queue was full, or the sender closed before its turn. */
  | "dropped"
  /** Redis could not be asked for the claim: not sent, since it might be twice. */
  | "unclaimed";

export interface AlertSenderOptions {
  /** KIE_QUEUE_PREFIX, named in every alert. */
  deployment: string;
  claims: AlertClaims;
  post: PostJson;
  log: Logger;
  /** Values scrubbed from every payload (secretValues). */
  secrets?: readonly string[];
  /** Per delivery, and per claim. @defaultValue 5_000 */
  timeoutMs?: number;
  /** Events waiting beyond this are dropped (and logged). @defaultValue 100 */
  maxQueue?: number;
  onOutcome?: (event: AlertEventName | "unknown", outcome: AlertOutcome) => void;
  now?: () => number;
}

export interface AlertSender {
  /** Queues an alert and returns at once: nothing a stage does ever waits for a receiver. */
  emit(source: AlertSource): void;
  /** Resolves once every queued alert has been delivered or given up. */
  idle(): Promise<void>;
  /** Stops taking alerts; delivers what is queued until `deadlineMs`, then drops the rest. */
  close(deadlineMs?: number): Promise<void>;
}

export const ALERT_TIMEOUT_MS = 5_000;
export const ALERT_MAX_QUEUE = 100;

/**
 * The alert queue: bounded, in memory, drained one delivery at a time in the background. Each
 * event is claimed fleet-wide (Redis SET NX) before it is sent, so it goes out at most once
 * whichever workers notice it; a receiver that hangs costs the timeout, and only this queue.
 */
export function createAlertSender(options: AlertSenderOptions): AlertSender {
  const timeoutMs = options.timeoutMs ?? ALERT_TIMEOUT_MS;
  const maxQueue = options.maxQueue ?? ALERT_MAX_QUEUE;
  const now = options.now ?? Date.now;
  const log = options.log;
  const queue: AlertSource[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;
  let current: AbortController | undefined;

  const outcome = (event: AlertEventName | "unknown", result: AlertOutcome) => {
    try {
      options.onOutcome?.(event, result);
    } catch {
      // A metrics hook must not break delivery.
    }
  };

  const withTimeout = <T>(promise: Promise<T>, what: string): Promise<T> =>
    answerWithin(promise, timeoutMs, what);

  async function deliver(source: AlertSource): Promise<void> {
    let event: AlertEvent | undefined;
    try {
      event = typeof source === "function" ? await withTimeout(source(), "building an alert") : source;
    } catch (error) {
      log.warn({ err: error }, "alert: could not build the event; not sent");
      outcome("unknown", "dropped");
      return;
    }
    if (!event) return;
    const id = alertId(event);
    let claimed: boolean;
    try {
      claimed = await withTimeout(options.claims.claim(id), "claiming an alert");
    } catch (error) {
      log.warn({ err: error, alert: id }, "alert: could not claim it in Redis; not sent");
      outcome(event.event, "unclaimed");
      return;
    }
    if (!claimed) {
      log.debug({ alert: id }, "alert: already claimed by another notice");
      outcome(event.event, "duplicate");
      return;
    }
    const body = scrubbedJson(alertPayload(event, options.deployment, now()), options.secrets ?? []);
    const controller = new AbortController();
    current = controller;
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const status = await options.post(body, controller.signal);
      if (status >= 200 && status < 300) {
        log.info({ alert: id, event: event.event }, "alert sent");
        outcome(event.event, "sent");
      } else {
        log.warn({ alert: id, status }, "alert: the receiver refused it; not retried");
        outcome(event.event, "failed");
      }
    } catch (error) {
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      log.warn({ alert: id, err: reason }, "alert: delivery failed; not retried");
      outcome(event.event, "failed");
    } finally {
      clearTimeout(timer);
      current = undefined;
    }
  }

  async function drain(): Promise<void> {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      await deliver(next).catch((error: unknown) => log.error({ err: error }, "alert: delivery crashed"));
    }
  }

  function kick() {
    draining ??= drain().finally(() => {
      draining = undefined;
      if (queue.length > 0 && !closed) kick();
    });
  }

  async function idle(): Promise<void> {
    while (draining) await draining;
  }

  return {
    emit(source) {
      if (closed) {
        outcome(typeof source === "function" ? "unknown" : source.event, "dropped");
        return;
      }
      if (queue.length >= maxQueue) {
        const name = typeof source === "function" ? "unknown" : source.event;
        log.warn({ event: name, queued: queue.length }, "alert queue full: alert dropped");
        outcome(name, "dropped");
        return;
      }
      queue.push(source);
      kick();
    },
    idle,
    async close(deadlineMs = 2_000) {
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        idle().then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), deadlineMs);
        }),
      ]);
      clearTimeout(timer);
      if (finished) return;
      const left = queue.splice(0);
      for (const source of left) outcome(typeof source === "function" ? "unknown" : source.event, "dropped");
      if (left.length > 0) log.warn({ dropped: left.length }, "alerts still queued at shutdown: dropped");
      // The delivery in hand gives up now; a claim or build in hand ends by its own timeout.
      current?.abort(new Error("shutting down"));
    },
  };
}
