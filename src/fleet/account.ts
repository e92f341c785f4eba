import { createHash } from "node:crypto";

/**
 * An account's identity in Redis and logs. The API key itself never leaves the process: Redis
 * and logs only ever see `accountId(apiKey)`.
 */

/** Root of every account key; deliberately outside any queue prefix (see `accountKey`). */
const ACCOUNT_KEY_ROOT = "kie-batch:acct";

const ACCOUNT_ID = /^[0-9a-f]{16}$/;
const KEY_NAME = /^[a-z0-9][a-z0-9:-]*$/;

/** The first 16 hex digits of sha256(apiKey): stable, short, and not reversible to the key. */
export function accountId(apiKey: string): string {
  if (apiKey.length === 0) throw new TypeError("accountId: the API key is empty");
  return createHash("sha256").update(apiKey, "utf8").digest("hex").slice(0, 16);
}

/**
 * The rate window of a named account (KIE_ACCOUNTS): every key of it shares one window, kept under
 * this id. A hash of the name, so it has an account id's shape and cannot be a key's.
 */
export function sharedAccountId(name: string): string {
  return accountId(`kie-batch account ${name}`);
}

/**
 * `kie-batch:acct:{<accountId>}:<name>`. The hash tag puts all of an account's keys in one Redis
 * Cluster slot, so one script may touch several of them. The key is not under the queue prefix:
 * every deployment and prefix using one KIE key shares one rate limit, one pause, one cap.
 */
export function accountKey(id: string, name: string): string {
  if (!ACCOUNT_ID.test(id)) throw new TypeError(`accountKey: not an account id: ${JSON.stringify(id)}`);
  if (!KEY_NAME.test(name)) throw new TypeError(`accountKey: bad key name: ${JSON.stringify(name)}`);
  return `${ACCOUNT_KEY_ROOT}:{${id}}:${name}`;
}

/** A SCAN pattern matching every key of one account (braces are not glob characters). */
export function accountKeyPattern(id: string): string {
  if (!ACCOUNT_ID.test(id))
    throw new TypeError(`accountKeyPattern: not an account id: ${JSON.stringify(id)}`);
  return `${ACCOUNT_KEY_ROOT}:{${id}}:*`;
}
