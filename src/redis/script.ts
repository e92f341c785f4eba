import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";

/** Any ioredis client a script runs on: each script's keys share one Cluster slot. */
export type RedisClient = Redis | Cluster;

/**
 * The "now" of a script, epoch ms (structurally `core/clock`'s `Clock`, which this folder does
 * not import). Absent, scripts read the Redis server's clock.
 */
export interface ScriptClock {
  now(): number;
}

/** `now_us()`, `now_ms()` and `num()`, prepended to every script (see prelude.lua). */
const PRELUDE = readFileSync(new URL("./prelude.lua", import.meta.url), "utf8");

/** `--- @include "path.lua"` (BullMQ's convention): the file, relative to the including one. */
const INCLUDE = /^--- @include "([^"]+)"[ \t]*$/gm;

/** A `.lua` file with its includes expanded in place (each where it is named, at load). */
function readLua(url: URL): string {
  return readFileSync(url, "utf8").replace(INCLUDE, (_, path: string) => readLua(new URL(path, url)));
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/**
 * A Lua script, run by EVALSHA and falling back to EVAL (which also caches it) when the server
 * does not know it yet or forgot it (a restart, SCRIPT FLUSH). Unlike `defineCommand` it adds
 * nothing to the client, which the program shares with BullMQ.
 *
 * ARGV[1] is always the caller's clock (see prelude.lua): `run` puts it there, so a script's own
 * arguments start at ARGV[2].
 */
export class RedisScript {
  /** The prelude and the body: what the server runs. */
  readonly source: string;
  readonly sha: string;

  constructor(
    /** For errors and logs. */
    readonly name: string,
    body: string,
  ) {
    this.source = `${PRELUDE}\n${body}`;
    this.sha = createHash("sha1").update(this.source, "utf8").digest("hex");
  }

  /**
   * The script in the `.lua` file at `url`, includes expanded. Resolve `url` against the owner's
   * `import.meta.url`, so the file is found beside the module in src/ and in dist/ alike; call it
   * at module load, so a missing file fails at startup, not at the first command.
   */
  static fromFile(url: URL): RedisScript {
    const name = url.pathname.slice(url.pathname.lastIndexOf("/") + 1).replace(/\.lua$/, "");
    return new RedisScript(name, readLua(url));
  }

  /** Runs with KEYS = `keys`, ARGV = [clock, ...args]; `clock` absent means Redis TIME. */
  async run(
    redis: RedisClient,
    keys: readonly string[],
    args: readonly (string | number | Buffer)[],
    clock?: ScriptClock,
  ): Promise<unknown> {
    const argv = [clock ? String(clock.now()) : "", ...args];
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...argv);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return await redis.eval(this.source, keys.length, ...keys, ...argv);
    }
  }
}

/** An HGETALL reply (flat [field, value, ...]) as an object. */
export function hashFromReply(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}
