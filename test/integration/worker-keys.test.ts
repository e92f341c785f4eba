/**
 * A pool of API keys against real Redis and the simulator, which keeps a window per account and
 * shows a task only to its own account's keys (so a status call with another key would never
 * find it). Three keys, one capped (433): that key pauses, the other two carry the batch, each
 * task polled with its own key. Two keys of one account (KIE_ACCOUNTS) share one window: no 429.
 * A key removed while its tasks are in flight: the row fails naming the key's short hash.
 * No key appears in any log line, row error or pause reason.
 */
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { openOperator, type RunningWorker, startWorker } from "../../src/app/index.js";
import { createLogger } from "../../src/core/logger.js";
import { accountId } from "../../src/fleet/index.js";
import { fleetLines } from "../../src/report/fleet-state.js";
import { startAlertReceiver } from "../helpers/alert-receiver.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until, type WorkerHarness } from "../helpers/worker-harness.js";

/** A pino logger at trace level whose JSON lines land in a string. */
function capturingLogger() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString("utf8"));
      callback();
    },
  });
  return { log: createLogger({ level: "trace", pretty: false, destination }), text: () => chunks.join("") };
}

const newKey = () => `test-pool-key-${randomUUID()}`;

/** Rows of `batch`, with the key (short hash) each one's task was created with. */
async function taskKeys(h: WorkerHarness, batch: string, count: number) {
  const keys: string[] = [];
  for (let i = 1; i <= count; i++) {
    const row = await h.pipeline.ledger.getRow(batch, `row-${i}`);
    keys.push(row?.taskKeys?.[row.taskId ?? ""] ?? "none");
  }
  return keys;
}

describe("a pool of API keys", () => {
  const harness = harnessPerTest();

  it("three keys, one capped (433): that key pauses, the other two carry the batch, each task polled with its own key", async () => {
    const [k2, k3] = [newKey(), newKey()];
    const h = await harness.start({
      sim: { apiKeys: [k2, k3], rateLimit: { limit: 3, windowMs: 2_000 } },
      env: { KIE_RATE_LIMIT: "3/2s" },
    });
    const k1 = h.pipeline.apiKey;
    for (const key of [k2, k3]) h.fleet(key); // their fleet keys go with the harness
    const { sim } = h.pipeline;
    sim.capKey(k2, true);
    const captured = capturingLogger();
    const receiver = await startAlertReceiver();
    const worker: RunningWorker = await startWorker(
      h.config({ KIE_API_KEYS: `${k2},${k3}=team`, KIE_ALERT_WEBHOOK_URL: receiver.url }),
      captured.log,
      { adminListen: 0 },
    );
    let metrics = "";
    try {
      await h.pipeline.addRows(
        "pool",
        Array.from({ length: 12 }, () => ({})),
      );
      const summary = await h.pipeline.waitFinished("pool", 40_000);
      expect(summary).toMatchObject({ total: 12, archived: 12, failed: 0 });
      metrics = await (await fetch(`http://127.0.0.1:${worker.admin!.port}/metrics`)).text();
      await worker.alerts.idle();
    } finally {
      await worker.close(5_000);
      await receiver.close();
    }
    // The pause alert names the capped key's short hash (not the first key's), and no key at all.
    expect(receiver.of("submissions.paused").map((a) => a.account)).toEqual([accountId(k2)]);
    for (const key of [k1, k2, k3]) expect(receiver.bodies.join("\n")).not.toContain(key);
    const stats = sim.stats();
    expect(stats.createsByKey?.[k2]).toBeUndefined();
    expect((stats.createsByKey?.[k1] ?? 0) + (stats.createsByKey?.[k3] ?? 0)).toBe(12);
    // Both uncapped keys were used, and each row names the key its task was created with.
    const used = await taskKeys(h, "pool", 12);
    expect(new Set(used)).toEqual(new Set([accountId(k1), accountId(k3)]));
    // The capped key alone is paused.
    expect((await h.fleet(k2).pause.get())?.kind).toBe("usage-cap");
    expect(await h.fleet(k1).pause.get()).toBeNull();
    expect(await h.fleet(k3).pause.get()).toBeNull();
    // No key in any line, anywhere; the pause is logged under the key's short hash.
    const text = captured.text();
    for (const key of [k1, k2, k3]) {
      expect(text).not.toContain(key);
      expect(metrics).not.toContain(key);
    }
    // Metrics name each key by its short hash and account (a key of no named account: its hash).
    const paused = (key: string, account: string, kind: string) =>
      `kie_batch_key_submissions_paused{key="${accountId(key)}",account="${account}",kind="${kind}"}`;
    expect(metrics).toContain(`${paused(k2, accountId(k2), "usage-cap")} 1`);
    expect(metrics).toContain(`${paused(k3, "team", "usage-cap")} 0`);
    expect(metrics).toContain(`${paused(k1, accountId(k1), "usage-cap")} 0`);
    const pauseLine = text.split("\n").find((line) => line.includes("usage cap is reached"));
    expect(JSON.parse(pauseLine ?? "{}")).toMatchObject({ key: accountId(k2) });
    expect(JSON.stringify(await h.fleet(k2).pause.get())).not.toContain(k2);
    // Status names each key by its short hash, and its account where it has one.
    const operator = await openOperator(h.config({ KIE_API_KEYS: `${k2},${k3}=team` }));
    try {
      const lines = fleetLines(await operator.fleetState()).join("\n");
      expect(lines).toContain(`fleet: account ${accountId(k2)} PAUSED`);
      expect(lines).toContain(`fleet: account ${accountId(k3)} (team) running`);
      for (const key of [k1, k2, k3]) expect(lines).not.toContain(key);
    } finally {
      await operator.close();
    }
  });

  it("two keys of one account (KIE_ACCOUNTS) share its window: the account's rate, not twice it", async () => {
    const [k1, k2] = [newKey(), newKey()];
    // Both keys in one account on the simulator too: one window for the two.
    const h = await harness.start({
      sim: {
        apiKey: k1,
        apiKeys: [k2],
        accounts: { [k1]: "team", [k2]: "team" },
        rateLimit: { limit: 3, windowMs: 1_500 },
        latency: { minMs: 100, maxMs: 200 },
      },
      env: { KIE_API_KEY: k1, KIE_API_KEYS: k2, KIE_ACCOUNTS: "team,team", KIE_RATE_LIMIT: "3/1500ms" },
    });
    for (const key of [k1, k2]) h.fleet(key);
    await h.worker();
    await h.pipeline.addRows(
      "shared",
      Array.from({ length: 9 }, () => ({})),
    );
    await h.pipeline.waitFinished("shared", 40_000);
    const stats = h.pipeline.sim.stats();
    expect(stats.creates).toBe(9);
    // Both keys took creates, yet the account's window held them to 3 per 1.5 s: 9 creates span
    // two whole windows (a window per key would let 6 through at once, and span one). The
    // tolerance is the arrival jitter of a loaded machine, which the limiter's margin absorbs.
    expect(Object.keys(stats.createsByKey ?? {}).sort()).toEqual([k1, k2].sort());
    const times = stats.createTimes;
    for (let i = 3; i < times.length; i++) expect(times[i]! - times[i - 3]!).toBeGreaterThan(1_500 - 150);
    expect(times[8]! - times[0]!).toBeGreaterThan(3_000 - 200);
  });

  it("a key removed while its tasks are in flight: a worker without it leaves the poll, then fails the row naming the key's short hash", async () => {
    const k2 = newKey();
    const h = await harness.start({
      sim: {
        apiKeys: [k2],
        latency: { minMs: 4_000, maxMs: 4_000 },
        rateLimit: { limit: 20, windowMs: 1_000 },
      },
    });
    const k1 = h.pipeline.apiKey;
    h.fleet(k2);
    // The first worker has both keys: each create goes out with a key whose slot is free.
    const first = await h.worker({ env: { KIE_API_KEYS: k2 }, stages: ["submit"] });
    await h.pipeline.addRows(
      "gone",
      Array.from({ length: 6 }, () => ({})),
    );
    const used = await until("every row submitted", async () => {
      const keys = await taskKeys(h, "gone", 6);
      return keys.every((key) => key !== "none") ? keys : undefined;
    });
    await first.close(5_000);
    const withK2 = used.flatMap((key, i) => (key === accountId(k2) ? [`row-${i + 1}`] : []));
    expect(withK2.length).toBeGreaterThan(0);
    // The second worker has only KIE_API_KEY: tasks of k2 wait for a worker that has it, then fail.
    await h.worker({ settings: { keyMissingGraceMs: 1_000 } });
    const summary = await h.pipeline.waitFinished("gone", 30_000);
    expect(summary).toMatchObject({ total: 6, archived: 6 - withK2.length, failed: withK2.length });
    for (const rowId of withK2) {
      const row = await h.pipeline.ledger.getRow("gone", rowId);
      expect(row?.error).toContain(`API key ${accountId(k2)}`);
      expect(row?.error).not.toContain(k2);
      // The task and its reservation are kept: `retry` with the key back polls the same task.
      expect(row?.taskIds).toHaveLength(1);
    }
    expect(h.pipeline.sim.stats().creates).toBe(6);
    expect(k1).not.toBe(k2);
  });

  it("operator commands act on every configured key: status shows each by its short hash, pause stops them all", async () => {
    const [k2, k3] = [newKey(), newKey()];
    const h = await harness.start();
    const k1 = h.pipeline.apiKey;
    for (const key of [k2, k3]) h.fleet(key);
    const config = h.config({ KIE_API_KEYS: `${k2},${k3}` });
    const operator = await openOperator(config);
    try {
      const ids = (await operator.fleetState()).accounts.map((a) => a.accountId);
      expect(ids).toEqual([k1, k2, k3].map((key) => accountId(key)));
      for (const pause of operator.pauses(ids)) await pause.pause("manual", "maintenance window");
      for (const key of [k1, k2, k3]) expect((await h.fleet(key).pause.get())?.kind).toBe("manual");
      const lines = fleetLines(await operator.fleetState()).join("\n");
      for (const key of [k1, k2, k3]) {
        expect(lines).toContain(`account ${accountId(key)} PAUSED`);
        expect(lines).not.toContain(key);
      }
    } finally {
      await operator.close();
    }
  });
});
