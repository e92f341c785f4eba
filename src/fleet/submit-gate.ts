import { accountKey } from "./account.js";
import { type PauseState, parsePauseState } from "./pause.js";
import { hashFromReply, LUA_NOW, type RedisClient, RedisScript } from "./redis-script.js";

/**
 * What a submitter reads before each create: the account's pause and backoff in one round trip
 * (no pub/sub: a worker that missed a message would keep spending).
 */
export interface SubmitGate {
  /** Submissions are paused; nothing should be sent (except a claimed probe). */
  paused: PauseState | null;
  /** A 429/455 backoff runs: wait this long (Redis clock) before the next create. */
  backoffMs: number;
}

/* KEYS[1] pause hash, KEYS[2] backoff hash. Returns {pause HGETALL, backoff ms left}. */
const READ_GATE = new RedisScript(`${LUA_NOW}
local untilMs = tonumber(redis.call('HGET', KEYS[2], 'until')) or 0
return {redis.call('HGETALL', KEYS[1]), math.max(0, untilMs - now_ms())}
`);

export async function readSubmitGate(redis: RedisClient, accountId: string): Promise<SubmitGate> {
  const keys = [accountKey(accountId, "pause"), accountKey(accountId, "backoff")];
  const [pause, backoffMs] = (await READ_GATE.run(redis, keys, [])) as [unknown, number];
  return { paused: parsePauseState(hashFromReply(pause)), backoffMs: Number(backoffMs) };
}
