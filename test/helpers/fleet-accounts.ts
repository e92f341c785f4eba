import type { Redis } from "ioredis";
import { afterEach } from "vitest";
import { connect, deleteAccountKeys, fakeApiKey } from "./fleet-redis.js";

/**
 * Fresh fake accounts and connections for fleet tests: after each test, every account's keys are
 * deleted (through the first connection) and every connection is quit.
 */
export function fleetAccounts(): { apiKey(): string; connect(): Redis } {
  let clients: Redis[] = [];
  let apiKeys: string[] = [];
  afterEach(async () => {
    const [cleaner] = clients;
    if (cleaner) for (const key of apiKeys) await deleteAccountKeys(cleaner, key);
    await Promise.all(clients.map((c) => c.quit()));
    clients = [];
    apiKeys = [];
  });
  return {
    apiKey() {
      const apiKey = fakeApiKey();
      apiKeys.push(apiKey);
      return apiKey;
    },
    connect() {
      const redis = connect();
      clients.push(redis);
      return redis;
    },
  };
}
