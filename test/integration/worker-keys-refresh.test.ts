/**
 * A running worker's refresh of its key holds that finds the key's window mapping changed (it
 * lapsed and a worker with other KIE_ACCOUNTS stored its own) logs it as that conflict: by short
 * hash and account names, never the key, with the advice the refused start gives.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { registerKeys, type WorkerKey } from "../../src/app/keys.js";
import type { Config } from "../../src/config/index.js";
import { accountId, accountKey } from "../../src/fleet/account.js";
import { InFlight } from "../../src/fleet/index.js";
import { registerAccount } from "../../src/report/accounts.js";
import { capturingLogger } from "../helpers/capturing-logger.js";
import { fleetAccounts } from "../helpers/fleet-accounts.js";

const accounts = fleetAccounts();

describe("refreshing a worker's key holds", () => {
  it("logs a window mapping stored differently since start-up as a conflict naming the accounts, with what to do", async () => {
    const redis = accounts.connect();
    const apiKey = accounts.apiKey();
    const id = accountId(apiKey);
    const prefix = `kie-refresh-${randomUUID().slice(0, 8)}`;
    const config = { KIE_RATE_LIMIT: { limit: 20, windowMs: 10_000 }, KIE_QUEUE_PREFIX: prefix } as Config;
    const key = {
      id,
      account: id,
      kie: {},
      fleet: {
        accountId: id,
        windowId: id,
        createLimiter: { configureRate: async () => ({ changed: false }) },
      },
    } as unknown as WorkerKey;
    const { log, text } = capturingLogger();
    const registered = await registerKeys(redis, config, [key], log, { ttlMs: 60_000, everyMs: 50 });
    try {
      // The mapping lapsed and a worker counting the key in account "team" stored its own.
      await redis.set(accountKey(id, "window"), "account:team", "PX", 60_000);
      const deadline = Date.now() + 5_000;
      while (!text().includes("conflict") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Five more refreshes while it lasts: said once, not at each.
      await new Promise((resolve) => setTimeout(resolve, 250));
    } finally {
      await registered.leases.close();
      const own = await redis.keys(`*${prefix}*`);
      if (own.length > 0) await redis.del(...own);
    }
    const line = text()
      .split("\n")
      .find((l) => l.includes("conflict"));
    expect(line).toBeDefined();
    expect(
      text()
        .split("\n")
        .filter((l) => l.includes("window conflict")),
    ).toHaveLength(1);
    const entry = JSON.parse(line!) as { level: number; msg: string; keys: unknown };
    expect(entry.level).toBe(50);
    expect(entry.keys).toEqual([{ keyId: id, mine: "a window of its own", stored: 'account "team"' }]);
    expect(entry.msg).toContain("API key window conflict found while refreshing");
    expect(entry.msg).toContain(
      `API key ${id}: this worker counts it in a window of its own (KIE_ACCOUNTS), the running workers in account "team"`,
    );
    expect(entry.msg).toContain(
      "Give every worker the same KIE_ACCOUNTS; to change it, stop every worker that uses the key: its window is forgotten 60 s after the last one stops",
    );
    expect(text()).not.toContain("refreshing this worker's hold of its API keys failed");
    expect(text()).not.toContain(apiKey);
  });

  it("gives a job's in-flight slot back under every key registered for the deployment, one this worker lacks too", async () => {
    const redis = accounts.connect();
    const mine = accountId(accounts.apiKey());
    const removed = accountId(accounts.apiKey());
    const otherDeployment = accountId(accounts.apiKey());
    const prefix = `kie-refresh-${randomUUID().slice(0, 8)}`;
    const config = { KIE_RATE_LIMIT: { limit: 20, windowMs: 10_000 }, KIE_QUEUE_PREFIX: prefix } as Config;
    const key = {
      id: mine,
      account: mine,
      kie: {},
      fleet: {
        accountId: mine,
        windowId: mine,
        createLimiter: { configureRate: async () => ({ changed: false }) },
      },
    } as unknown as WorkerKey;
    // A key an earlier worker of the deployment had (removed from this one's KIE_API_KEYS since).
    await registerAccount(redis, prefix, removed);
    const slots = (id: string) => new InFlight(redis, { accountId: id, deployment: prefix });
    for (const id of [mine, removed, otherDeployment])
      expect(await slots(id).tryAcquire("b/r1", 0)).toBe(true);
    const registered = await registerKeys(redis, config, [key], capturingLogger().log, { ttlMs: 60_000 });
    try {
      await registered.releaseInFlightEverywhere("b/r1");
      expect(await slots(mine).release("b/r1")).toBe(false);
      expect(await slots(removed).release("b/r1")).toBe(false);
      // A key of no worker of this deployment is not asked.
      expect(await slots(otherDeployment).release("b/r1")).toBe(true);
    } finally {
      await registered.leases.close();
      const own = await redis.keys(`*${prefix}*`);
      if (own.length > 0) await redis.del(...own);
    }
  });
});
