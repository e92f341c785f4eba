import { accountId } from "../fleet/index.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { OpsError } from "./errors.js";

/**
 * Which KIE accounts a deployment (queue prefix) uses. Fleet state (pause, rate) lives per account,
 * outside any prefix, and an operator command may run without KIE_API_KEY: so each worker records
 * its account id (never the key) in a set under the deployment's prefix.
 */

/** SET of account ids, `{<prefix>}:accounts`: the prefix's hash tag, like every key of the deployment. */
function accountsKey(queuePrefix: string): string {
  return `{${queuePrefix}}:accounts`;
}

/** HASH of account id -> account name (KIE_ACCOUNTS), for the keys of a named account. */
function accountNamesKey(queuePrefix: string): string {
  return `{${queuePrefix}}:account-names`;
}

/** Called by every worker at start; idempotent. `name`: the key's account name, when it has one. */
export async function registerAccount(
  redis: Redis,
  queuePrefix: string,
  id: string,
  name?: string,
): Promise<void> {
  await redis.sadd(accountsKey(queuePrefix), id);
  if (name !== undefined && name !== id) await redis.hset(accountNamesKey(queuePrefix), id, name);
}

/** The account names registered for the prefix, by key id (short hash). */
export async function accountNames(redis: Redis, queuePrefix: string): Promise<Record<string, string>> {
  return redis.hgetall(accountNamesKey(queuePrefix));
}

/** Account ids registered for the prefix, sorted. */
export async function registeredAccounts(redis: Redis, queuePrefix: string): Promise<string[]> {
  return (await redis.smembers(accountsKey(queuePrefix))).sort();
}

/**
 * Every key id a job of the deployment may hold a slot under: those registered for the prefix
 * (a key removed from every configuration since is still there) and `known` (this process's).
 */
export async function deploymentAccounts(
  redis: Redis,
  queuePrefix: string,
  known: Iterable<string>,
): Promise<Set<string>> {
  return new Set([...(await registeredAccounts(redis, queuePrefix)), ...known]);
}

/**
 * The accounts a command acts on: the configured keys' (KIE_API_KEY, KIE_API_KEYS: `apiKey` is one
 * key or the list) when any is set, else every account registered for the prefix (possibly none).
 */
export async function resolveAccounts(
  redis: Redis,
  queuePrefix: string,
  apiKey: string | readonly string[] | undefined,
): Promise<string[]> {
  const keys = typeof apiKey === "string" ? [apiKey] : (apiKey ?? []);
  if (keys.length > 0) return keys.map((key) => accountId(key));
  return registeredAccounts(redis, queuePrefix);
}

/** Like `resolveAccounts`, for commands that change fleet state and so need at least one account. */
export async function requireAccounts(
  redis: Redis,
  queuePrefix: string,
  apiKey: string | readonly string[] | undefined,
): Promise<string[]> {
  const ids = await resolveAccounts(redis, queuePrefix, apiKey);
  if (ids.length === 0) {
    throw new OpsError(
      "no_account",
      `no KIE account is known for queue prefix "${queuePrefix}": set KIE_API_KEY, or start a worker once (it registers its account)`,
    );
  }
  return ids;
}
