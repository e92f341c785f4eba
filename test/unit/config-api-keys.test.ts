import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, requireApiKeys } from "../../src/config/index.js";

const K1 = "sk-pool-one-5c1e9a7b3d";
const K2 = "sk-pool-two-8f2d4b6a0c";
const K3 = "sk-pool-three-1a3c5e7f9b";

const keysOf = (env: Record<string, string>) => requireApiKeys(loadConfig(env));

/** The problems of a refused configuration, checked to quote none of `secrets`. */
function problemsOf(env: Record<string, string>, secrets: string[] = [K1, K2, K3]): string[] {
  try {
    keysOf(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const text = `${(error as Error).message} ${JSON.stringify(error)}`;
    for (const secret of secrets) expect(text).not.toContain(secret);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("KIE_API_KEYS and KIE_ACCOUNTS", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kie-keys-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("KIE_API_KEY first, then KIE_API_KEYS, a repeated key once; each its own account unless named", () => {
    expect(keysOf({ KIE_API_KEY: K1, KIE_API_KEYS: ` ${K2} ,${K1},${K3}` })).toEqual([
      { key: K1, where: "KIE_API_KEY" },
      { key: K2, where: "KIE_API_KEYS entry 1" },
      { key: K3, where: "KIE_API_KEYS entry 3" },
    ]);
  });

  it("key=account names the account; a base64 key's '=' padding stays the key's", () => {
    const padded = "c2stcGFkZGVkLWtleQ==";
    expect(keysOf({ KIE_API_KEYS: `${K1}=team,${K2}=team,${padded}` })).toEqual([
      { key: K1, account: "team", where: "KIE_API_KEYS entry 1" },
      { key: K2, account: "team", where: "KIE_API_KEYS entry 2" },
      { key: padded, where: "KIE_API_KEYS entry 3" },
    ]);
  });

  it("KIE_ACCOUNTS gives one account per key, in order", () => {
    const keys = keysOf({ KIE_API_KEY: K1, KIE_API_KEYS: `${K2},${K3}`, KIE_ACCOUNTS: "main,main,other" });
    expect(keys.map((k) => k.account)).toEqual(["main", "main", "other"]);
  });

  it("@file: one key a line, blank and # lines skipped, key=account allowed", async () => {
    const file = join(dir, "keys.txt");
    await writeFile(file, `# production keys\n${K1}=main\n\n  ${K2}  \r\n${K3}=other\n`);
    expect(keysOf({ KIE_API_KEYS: `@${file}` })).toEqual([
      { key: K1, account: "main", where: `KIE_API_KEYS file ${file} line 2` },
      { key: K2, where: `KIE_API_KEYS file ${file} line 4` },
      { key: K3, account: "other", where: `KIE_API_KEYS file ${file} line 5` },
    ]);
  });

  it("a bad line of the keys file is named by file and line, without the key", async () => {
    const file = join(dir, "bad-keys.txt");
    await writeFile(file, `${K1}\n${K2} ${K3}\n${K1}=main\n${K1}=other\n`);
    expect(problemsOf({ KIE_API_KEYS: `@${file}` })).toEqual([
      `KIE_API_KEYS file ${file} line 2: the key has a space, a comma or a character an HTTP header cannot carry`,
      `KIE_API_KEYS file ${file} line 4: the same key as KIE_API_KEYS file ${file} line 1, with another account`,
    ]);
  });

  it("a keys file that cannot be read is named, with the reason", () => {
    const file = join(dir, "missing.txt");
    expect(problemsOf({ KIE_API_KEYS: `@${file}` })).toEqual([
      `KIE_API_KEYS: cannot read the keys file ${file}: ENOENT`,
    ]);
  });

  it("refuses empty entries, a count of KIE_ACCOUNTS that is not one per key, and a conflicting account", () => {
    expect(problemsOf({ KIE_API_KEYS: `${K1},,${K2}` })).toEqual([
      "KIE_API_KEYS entry 2: empty (expected a key, or key=account)",
    ]);
    expect(problemsOf({ KIE_API_KEYS: `${K1},${K2}`, KIE_ACCOUNTS: "main" })[0]).toMatch(
      /^KIE_ACCOUNTS: 1 account name\(s\) for 2 key\(s\)/,
    );
    expect(problemsOf({ KIE_API_KEYS: `${K1}=main,${K2}`, KIE_ACCOUNTS: "other,main" })).toEqual([
      "KIE_ACCOUNTS name 1: KIE_API_KEYS entry 1 already names account main",
    ]);
  });

  it("without any key the worker cannot start", () => {
    expect(problemsOf({})).toEqual([
      "KIE_API_KEY or KIE_API_KEYS: required by the worker (the bearer token(s) of your KIE.ai account(s))",
    ]);
  });
});
