import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * A Lua script run by EVALSHA, falling back to EVAL (which also caches it) when the server does
 * not know it yet or forgot it after a restart. Unlike `defineCommand`, it adds nothing to the
 * injected client, which other parts of the program share.
 */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("NOSCRIPT")) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}

/**
 * Lua shared by the scripts. `now_ms` takes the caller's clock when given, else Redis TIME, which is
 * one clock for every machine of the fleet (scripts are replicated by effect, so TIME is allowed).
 */
export const LUA_PRELUDE = `
local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return arg end
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
local function num(v)
  if v == false or v == nil or v == '' then return 0 end
  return tonumber(v) or 0
end
`;
