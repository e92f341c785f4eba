import { hashFromReply, type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountKey } from "./account.js";
import { type PauseState, parsePauseState } from "./pause.js";

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

const READ_GATE = RedisScript.fromFile(new URL("./scripts/read-gate.lua", import.meta.url));

/** `scriptClock`: "now" of the backoff check, epoch ms; absent, the Redis server's clock. */
export async function readSubmitGate(
  redis: RedisClient,
  accountId: string,
  scriptClock?: ScriptClock,
): Promise<SubmitGate> {
  const keys = [accountKey(accountId, "pause"), accountKey(accountId, "backoff")];
  const [pause, backoffMs] = (await READ_GATE.run(redis, keys, [], scriptClock)) as [unknown, number];
  return { paused: parsePauseState(hashFromReply(pause)), backoffMs: Number(backoffMs) };
}
