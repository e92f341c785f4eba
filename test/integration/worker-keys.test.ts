/**
 * A pool of API keys against real Redis and the simulator, which keeps a window per account and
 * shows a task only to its own account's keys (so a status call with another key would never
 * find it). Three keys, one capped (433): that key pauses, the other two carry the batch, each
 * task polled with its own key. Two keys of one account (KIE_ACCOUNTS) share one window: no 429.
 * A key removed while its tasks are in flight: the row fails naming the key's short hash.
 * No key appears in any log line, row error or pause reason.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openOperator, type RunningWorker, startWorker } from "../../src/app/index.js";
import { sharedAccountId } from "../../src/fleet/account.js";
import { accountId, accountKey, accountKeyPattern } from "../../src/fleet/index.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { fleetLines } from "../../src/report/fleet-state.js";
import { readAllStatus, readBatchStatus } from "../../src/report/status.js";
import { allLines, batchLines } from "../../src/report/status-text.js";
import { startAlertReceiver } from "../helpers/alert-receiver.js";
import { capturingLogger } from "../helpers/capturing-logger.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until, type WorkerHarness } from "../helpers/worker-harness.js";

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
    // Both keys took creates, yet the account's window (the simulator's, on arrival) never saw
    // a fourth create within 1.5 s: a window per key would have sent 6 at once and met 429s.
    expect(Object.keys(stats.createsByKey ?? {}).sort()).toEqual([k1, k2].sort());
    expect(stats.rateLimited).toBe(0);
    const times = stats.createTimes;
    for (let i = 3; i < times.length; i++) expect(times[i]! - times[i - 3]!).toBeGreaterThanOrEqual(1_500);
  });

  it("a key removed while its tasks are in flight: a worker without it leaves the poll, then fails the row naming the key's short hash (a worker still holding the key but not polling does not count)", async () => {
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
    const withK2 = used.flatMap((key, i) => (key === accountId(k2) ? [`row-${i + 1}`] : []));
    expect(withK2.length).toBeGreaterThan(0);
    // The second worker has only KIE_API_KEY: tasks of k2 wait for a worker that has it, then fail.
    // The first, still running with k2, runs no poll stage: it would never take those polls.
    await h.worker({ settings: { keyMissingGraceMs: 1_000 } });
    const summary = await h.pipeline.waitFinished("gone", 30_000);
    // While rows waited, `status` (the list, one batch's, and --json) named the key no running
    // worker that polls holds (never the key).
    const operator = await openOperator(h.config());
    try {
      const deps = {
        ledger: operator.ledger,
        fleet: () => operator.fleetState(),
        clock: operator.clock,
        queuePrefix: h.pipeline.prefix,
      };
      const all = await readAllStatus(deps);
      const one = await readBatchStatus(deps, "gone");
      for (const lines of [allLines(all).join("\n"), batchLines(one).join("\n")]) {
        expect(lines).toContain(
          `fleet: API key ${accountId(k2)} is held by no running worker that polls, and rows wait for it`,
        );
        expect(lines).not.toContain(k2);
        expect(lines).not.toContain(`API key ${accountId(k1)} is held by no`);
      }
      expect(JSON.parse(JSON.stringify(all)).keyWaits).toEqual([
        { accountId: accountId(k2), stage: "poll", lastAt: expect.any(String) },
      ]);
    } finally {
      await operator.close();
    }
    await first.close(5_000);
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

  it("a task is polled only with its own key: a worker whose first key is another leaves it, and a task recorded without a key is the deployment's default key's", {
    timeout: 60_000,
  }, async () => {
    const k2 = newKey();
    // Each key its own account on the simulator: a status call with k2 never finds k1's task.
    const h = await harness.start({ sim: { apiKeys: [k2], latency: { minMs: 100, maxMs: 200 } } });
    const k1 = h.pipeline.apiKey;
    h.fleet(k2);
    // One key: the task records it all the same.
    const first = await h.worker({ stages: ["submit"] });
    await h.pipeline.addRows(
      "switch",
      Array.from({ length: 4 }, () => ({})),
    );
    const tasks = await until("every row submitted", async () => {
      const rows = await Promise.all([1, 2, 3, 4].map((i) => h.pipeline.ledger.getRow("switch", `row-${i}`)));
      return rows.every((row) => row?.taskId !== undefined) ? rows.map((row) => row!) : undefined;
    });
    await first.close(5_000);
    for (const row of tasks) expect(row.taskKeys?.[row.taskId!]).toBe(accountId(k1));
    // Rows 1 and 2 as a worker from before tasks recorded their key left them: no key recorded.
    for (const row of tasks.slice(0, 2)) {
      // The key is kept by the task's ordinal in the row (`k:<n>`; `taskKey:<id>` in rows before it).
      const rowKey = ledgerKeys(h.pipeline.prefix).row("switch", row.id);
      const ordinal = await h.pipeline.redis.hget(rowKey, `task:${row.taskId}`);
      await h.pipeline.redis.hdel(rowKey, `taskKey:${row.taskId}`, `k:${ordinal}`);
    }
    // The operator switches KIE_API_KEY to k2: this worker must not poll k1's tasks with k2 (KIE
    // would answer not-found, and after the record-lag grace the row would be paid for again).
    const captured = capturingLogger();
    // Its poll jobs come back every 6 s (the grace bounds the recheck), so k1's worker gets them soon.
    const second = await startWorker(h.config({ KIE_API_KEY: k2 }), captured.log, {
      settings: { recordLagGraceMs: 200, keyMissingGraceMs: 6_000 },
    });
    try {
      await until("the k2 worker met every task (or resubmitted one)", () => {
        const left = new Set(
          captured
            .text()
            .split("\n")
            .filter((line) => line.includes(`"key":"${accountId(k1)}"`) && line.includes("API key"))
            .map((line) => JSON.parse(line).taskId as string),
        );
        return left.size === 4 || h.pipeline.sim.stats().creates > 4;
      });
    } finally {
      await second.close(5_000);
    }
    expect(h.pipeline.sim.stats().creates).toBe(4);
    // k1 back: every task is polled with it and archived, none paid twice.
    await h.worker();
    const summary = await h.pipeline.waitFinished("switch", 30_000);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0 });
    expect(h.pipeline.sim.stats().creates).toBe(4);
    for (const row of tasks) {
      const now = await h.pipeline.ledger.getRow("switch", row.id);
      expect(now).toMatchObject({ resubmits: 0, creditsUncertain: 0 });
      expect(now?.taskIds).toEqual([row.taskId]);
    }
    expect(captured.text()).not.toContain(k1);
    expect(captured.text()).not.toContain(k2);
  });

  it("a worker that counts a key in another window than the running workers refuses to start; once they stop, the mapping expires", async () => {
    const k2 = newKey();
    const h = await harness.start({ sim: { apiKeys: [k2] } });
    const k1 = h.pipeline.apiKey;
    h.fleet(k2);
    const account = `team-${randomUUID().slice(0, 8)}`;
    const keyLease = { ttlMs: 1_500, everyMs: 300 };
    const shared = { KIE_API_KEYS: k2, KIE_ACCOUNTS: `${account},${account}` };
    const running = await h.worker({ env: shared, keyLease });
    try {
      // Each key in a window of its own: each would take the account's rate for itself.
      const refused = await h.worker({ env: { KIE_API_KEYS: k2 }, keyLease }).then(
        () => "started",
        (error: Error) => error.message,
      );
      for (const id of [k1, k2].map((key) => accountId(key))) {
        expect(refused).toContain(`API key ${id}: this worker counts it in a window of its own`);
      }
      expect(refused).toContain(`the running workers in account "${account}"`);
      expect(refused).toContain("its window is forgotten 2 s after the last one stops");
      for (const key of [k1, k2]) expect(refused).not.toContain(key);
      // The same mapping starts.
      const another = await h.worker({ env: shared, keyLease });
      await another.close(5_000);
    } finally {
      await running.close(5_000);
    }
    // No worker refreshes the mapping any more: it expires, and the new one is taken.
    const windowKey = accountKey(accountId(k2), "window");
    await until(
      "the key's window mapping expired",
      async () => (await h.pipeline.redis.exists(windowKey)) === 0,
      {
        timeoutMs: 5_000,
      },
    );
    const renamed = await h.worker({ env: { KIE_API_KEYS: k2 }, keyLease });
    expect(await h.pipeline.redis.get(windowKey)).toBe("own");
    await renamed.close(5_000);
    const stale = await h.pipeline.redis.keys(accountKeyPattern(sharedAccountId(account)));
    if (stale.length > 0) await h.pipeline.redis.del(...stale);
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
