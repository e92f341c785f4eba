import { readFileSync } from "node:fs";
import { ConfigError } from "./load.js";
import type { Config } from "./schema.js";

/**
 * The worker's API keys: `KIE_API_KEY`, then `KIE_API_KEYS` (comma-separated, or `@file` with one
 * key a line), each optionally `key=account`; `KIE_ACCOUNTS` names the account of each key in
 * order. Keys of one account share its rate window (KIE limits per account). Messages name the
 * variable, the file and line or the entry's position: never the key itself.
 */
export interface ApiKeyEntry {
  readonly key: string;
  /** The account the key belongs to; absent: an account of its own. */
  readonly account?: string;
  /** Where it was given, for messages ("KIE_API_KEYS entry 2", "keys.txt line 3"). */
  readonly where: string;
}

/** An account name: starts with a letter, so a base64 key's "=" padding is never read as one. */
const ACCOUNT_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
/** What an HTTP header value carries: visible ASCII, no spaces, no commas (the list separator). */
const KEY_CHARS = /^[\x21-\x2b\x2d-\x7e]+$/;
const MAX_KEY_CHARS = 512;

/** Every key the worker may use, first `KIE_API_KEY`'s; throws a ConfigError when none is set. */
export function requireApiKeys(config: Pick<Config, "KIE_API_KEY" | "KIE_API_KEYS" | "KIE_ACCOUNTS">) {
  const keys = apiKeysOf(config);
  if (keys.length === 0) {
    throw new ConfigError([
      "KIE_API_KEY or KIE_API_KEYS: required by the worker (the bearer token(s) of your KIE.ai account(s))",
    ]);
  }
  return keys;
}

/** The configured keys (possibly none), checked; throws a ConfigError naming every problem. */
export function apiKeysOf(
  config: Pick<Config, "KIE_API_KEY" | "KIE_API_KEYS" | "KIE_ACCOUNTS">,
): ApiKeyEntry[] {
  const problems: string[] = [];
  const entries: ApiKeyEntry[] = [];
  if (config.KIE_API_KEY) entries.push(...parseEntries([config.KIE_API_KEY], () => "KIE_API_KEY", problems));
  if (config.KIE_API_KEYS) entries.push(...listEntries(config.KIE_API_KEYS, problems));
  const unique = withoutRepeats(entries, problems);
  const named = config.KIE_ACCOUNTS ? withAccounts(unique, config.KIE_ACCOUNTS, problems) : unique;
  if (problems.length > 0) throw new ConfigError(problems);
  return named;
}

function listEntries(value: string, problems: string[]): ApiKeyEntry[] {
  if (!value.startsWith("@")) {
    const items = value.split(",").map((item) => item.trim());
    return parseEntries(items, (i) => `KIE_API_KEYS entry ${i + 1}`, problems);
  }
  const file = value.slice(1);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    problems.push(
      `KIE_API_KEYS: cannot read the keys file ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
    );
    return [];
  }
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  return parseEntries(lines, (i) => `KIE_API_KEYS file ${file} line ${i + 1}`, problems, true);
}

/** Blank items are errors in a list, skipped in a file (as `#` comment lines are). */
function parseEntries(
  items: readonly string[],
  where: (index: number) => string,
  problems: string[],
  isFile = false,
): ApiKeyEntry[] {
  const out: ApiKeyEntry[] = [];
  for (const [index, item] of items.entries()) {
    if (isFile && (item === "" || item.startsWith("#"))) continue;
    const entry = parseEntry(item, where(index));
    if (typeof entry === "string") problems.push(entry);
    else out.push(entry);
  }
  return out;
}

/** One `key` or `key=account`, or the problem with it (which never quotes the key). */
function parseEntry(item: string, at: string): ApiKeyEntry | string {
  if (item === "") return `${at}: empty (expected a key, or key=account)`;
  const split = item.lastIndexOf("=");
  const account = split > 0 ? item.slice(split + 1) : undefined;
  const named = account !== undefined && ACCOUNT_NAME.test(account);
  const key = named ? item.slice(0, split) : item;
  if (key.length > MAX_KEY_CHARS) return `${at}: the key is longer than ${MAX_KEY_CHARS} characters`;
  if (!KEY_CHARS.test(key))
    return `${at}: the key has a space, a comma or a character an HTTP header cannot carry`;
  return named ? { key, account, where: at } : { key, where: at };
}

/** The same key twice is one key (KIE_API_KEY may repeat in the list), unless its accounts differ. */
function withoutRepeats(entries: readonly ApiKeyEntry[], problems: string[]): ApiKeyEntry[] {
  const seen = new Map<string, ApiKeyEntry>();
  for (const entry of entries) {
    const first = seen.get(entry.key);
    if (!first) {
      seen.set(entry.key, entry);
    } else if (
      entry.account !== undefined &&
      first.account !== undefined &&
      entry.account !== first.account
    ) {
      problems.push(`${entry.where}: the same key as ${first.where}, with another account`);
    } else if (first.account === undefined && entry.account !== undefined) {
      seen.set(entry.key, { ...first, account: entry.account });
    }
  }
  return [...seen.values()];
}

/** `KIE_ACCOUNTS`: one account name per key, in order. */
function withAccounts(entries: readonly ApiKeyEntry[], value: string, problems: string[]): ApiKeyEntry[] {
  const names = value.split(",").map((name) => name.trim());
  if (names.length !== entries.length) {
    problems.push(
      `KIE_ACCOUNTS: ${names.length} account name(s) for ${entries.length} key(s): give one name per key, in the order of KIE_API_KEY, then KIE_API_KEYS`,
    );
    return [...entries];
  }
  return entries.map((entry, i) => {
    const name = names[i]!;
    if (!ACCOUNT_NAME.test(name)) {
      problems.push(
        `KIE_ACCOUNTS name ${i + 1}: expected 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter`,
      );
      return entry;
    }
    if (entry.account !== undefined && entry.account !== name) {
      problems.push(`KIE_ACCOUNTS name ${i + 1}: ${entry.where} already names account ${entry.account}`);
      return entry;
    }
    return { ...entry, account: name };
  });
}
