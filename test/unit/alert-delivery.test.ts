/**
 * Alert delivery without Redis or a network: an event goes out at most once whoever notices it,
 * the queue is bounded, a hung receiver only costs its timeout, and no secret reaches a payload.
 */

import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import type { AlertClaims } from "../../src/alerts/claims.js";
import type { AlertEvent } from "../../src/alerts/events.js";
import { type PostJson, safeError, webhookPoster } from "../../src/alerts/post.js";
import { secretValues } from "../../src/alerts/scrub.js";
import { type AlertOutcome, createAlertSender } from "../../src/alerts/sender.js";
import { loadConfig } from "../../src/config/index.js";
import { silentLogger } from "../../src/core/logger.js";
import type { BatchSummary } from "../../src/ledger/index.js";

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

function summary(overrides: Partial<BatchSummary> = {}): BatchSummary {
  return {
    batch: "spring",
    createdAt: T0 - HOUR,
    updatedAt: T0,
    total: 12,
    queued: 0,
    submitted: 0,
    generating: 0,
    archiving: 0,
    archived: 11,
    failed: 1,
    cancelled: 0,
    creditsEstimated: 96,
    creditsReserved: 0,
    creditsSpent: 88,
    creditsUncertain: 0,
    uncertain: 0,
    resubmits: 1,
    waitingBudget: 0,
    ...overrides,
  };
}

function memoryClaims(): AlertClaims & { taken: Set<string> } {
  const taken = new Set<string>();
  return {
    taken,
    claim: async (id) => {
      if (taken.has(id)) return false;
      taken.add(id);
      return true;
    },
  };
}

const finished = (batch: string, at = T0): AlertEvent => ({
  event: "batch.finished",
  summary: { ...summary({ batch }), finishedAt: at },
});

describe("alerts: delivery", () => {
  it("sends each event at most once, whichever sender noticed it first", async () => {
    const claims = memoryClaims();
    const bodies: string[] = [];
    const post: PostJson = async (body) => {
      bodies.push(body);
      return 200;
    };
    const outcomes: AlertOutcome[] = [];
    const senders = [1, 2].map(() =>
      createAlertSender({
        deployment: "prod",
        claims,
        post,
        log: silentLogger(),
        onOutcome: (_event, outcome) => outcomes.push(outcome),
      }),
    );
    for (const sender of senders) sender.emit(finished("spring"));
    senders[0]!.emit(async () => finished("summer"));
    senders[1]!.emit(async () => undefined); // nothing to say after all
    await Promise.all(senders.map((s) => s.idle()));
    expect(bodies.map((b) => (JSON.parse(b) as { batch: string }).batch).sort()).toEqual([
      "spring",
      "summer",
    ]);
    expect(outcomes.sort()).toEqual(["duplicate", "sent", "sent"]);
  });

  it("a receiver that never answers costs its timeout, never the caller; emit returns at once", async () => {
    const outcomes: AlertOutcome[] = [];
    const hang: PostJson = (_body, signal) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true }),
      );
    const sender = createAlertSender({
      deployment: "prod",
      claims: memoryClaims(),
      post: hang,
      log: silentLogger(),
      timeoutMs: 100,
      onOutcome: (_event, outcome) => outcomes.push(outcome),
    });
    const started = performance.now();
    sender.emit(finished("a"));
    sender.emit(finished("b"));
    expect(performance.now() - started).toBeLessThan(20);
    await sender.idle();
    expect(outcomes).toEqual(["failed", "failed"]);
  });

  it("the queue is bounded: beyond it alerts are dropped, and close drops what its deadline leaves", async () => {
    const outcomes: AlertOutcome[] = [];
    const hang: PostJson = (_body, signal) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true }),
      );
    const sender = createAlertSender({
      deployment: "prod",
      claims: memoryClaims(),
      post: hang,
      log: silentLogger(),
      timeoutMs: 60_000,
      maxQueue: 2,
      onOutcome: (_event, outcome) => outcomes.push(outcome),
    });
    for (const batch of ["a", "b", "c", "d"]) sender.emit(finished(batch)); // a in hand, b c queued, d dropped
    await expect.poll(() => outcomes).toEqual(["dropped"]);
    const closing = performance.now();
    await sender.close(100);
    expect(performance.now() - closing).toBeLessThan(2_000);
    await expect.poll(() => [...outcomes].sort()).toEqual(["dropped", "dropped", "dropped", "failed"]);
    sender.emit(finished("e")); // after close: dropped, never sent
    expect(outcomes.filter((o) => o === "dropped")).toHaveLength(4);
  });

  it("without a claim (Redis unreachable) nothing is sent: it might be twice", async () => {
    const bodies: string[] = [];
    const outcomes: AlertOutcome[] = [];
    const sender = createAlertSender({
      deployment: "prod",
      claims: {
        claim: async () => {
          throw new Error("Connection is closed");
        },
      },
      post: async (body) => {
        bodies.push(body);
        return 200;
      },
      log: silentLogger(),
      onOutcome: (_event, outcome) => outcomes.push(outcome),
    });
    sender.emit(finished("a"));
    await sender.idle();
    expect(bodies).toEqual([]);
    expect(outcomes).toEqual(["unclaimed"]);
  });

  it("no secret of the configuration reaches a payload", async () => {
    const config = loadConfig({
      KIE_API_KEY: "sk-live-0123456789abcdef",
      KIE_WEBHOOK_HMAC_KEY: "hmac-secret-fedcba9876543210",
      REDIS_URL: "redis://:redis-pass-4242@127.0.0.1:6379",
    });
    const secrets = secretValues(config, { AWS_SECRET_ACCESS_KEY: "aws-secret-abcdefghij" });
    expect(secrets.sort()).toEqual(
      [
        "aws-secret-abcdefghij",
        "hmac-secret-fedcba9876543210",
        "redis-pass-4242",
        "sk-live-0123456789abcdef",
      ].sort(),
    );
    const bodies: string[] = [];
    const sender = createAlertSender({
      deployment: "prod",
      claims: memoryClaims(),
      post: async (body) => {
        bodies.push(body);
        return 200;
      },
      log: silentLogger(),
      secrets,
    });
    sender.emit({
      event: "submissions.paused",
      account: "a1",
      kind: "bad-key",
      reason: `refused sk-live-0123456789abcdef (signed hmac-secret-fedcba9876543210, aws aws-secret-abcdefghij, redis redis-pass-4242)`,
      since: T0,
      by: "worker",
    });
    await sender.idle();
    expect(bodies).toHaveLength(1);
    for (const secret of secrets) expect(bodies[0]).not.toContain(secret);
    expect(JSON.parse(bodies[0]!).reason).toBe(
      "refused [redacted] (signed [redacted], aws [redacted], redis [redacted])",
    );
  });
});

describe("alerts: the webhook poster", () => {
  it("a receiver that cannot be reached fails with an error that keeps the URL's secret path out", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve)); // nothing listens there now
    const url = `http://127.0.0.1:${port}/services/T000/B000/secret-token-91ac`;
    const poster = webhookPoster(url, { timeoutMs: 2_000 });
    try {
      const error = await poster.post("{}", new AbortController().signal).then(
        () => new Error("expected a failure"),
        (reason: unknown) => reason as Error,
      );
      expect(error.message).toContain(`alert webhook http://127.0.0.1:${port}`);
      expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain(
        "secret-token-91ac",
      );
      expect(safeError(new Error(`POST ${url} failed`), url).message).not.toContain("secret-token-91ac");
    } finally {
      await poster.close();
    }
  });
});
