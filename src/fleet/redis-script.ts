import { createHash } from "node:crypto";
import type { Cluster, Redis } from "ioredis";

/** Any ioredis client the fleet state runs on: every script's keys share one Cluster slot. */
export type RedisClient = Redis | Cluster;

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/**
 * A Lua script run by EVALSHA, falling back to EVAL once when the server does not have it
 * (first use, or after a restart or SCRIPT FLUSH). Defined without touching the client, so the
 * fleet can share a connection with BullMQ.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source, "utf8").digest("hex");
  }

  async run(
    redis: RedisClient,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Lua preamble: `now_us()`, the Redis server's clock in microseconds. Every fleet timestamp comes
 * from here, never from a machine's clock: the fleet's machines disagree, Redis has one clock.
 * (Redis >= 5 replicates script effects, so TIME before a write is allowed.)
 */
export const LUA_NOW = `
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function now_ms()
  return math.floor(now_us() / 1000)
end
`;

/** An HGETALL reply (flat [field, value, ...]) as an object. */
export function hashFromReply(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}
