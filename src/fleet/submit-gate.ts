import { hashFromReply, type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountKey } from "./account.js";
import { type PauseState, parsePauseState } from "./pause.js";

/**
 * What a submitter reads before each create: the key's pause and its account's backoff at once
 * (no pub/sub: a worker that missed a message would keep spending).
 */
export interface SubmitGate {
  /** Submissions are paused; nothing should be sent (except a claimed probe). */
  paused: PauseState | null;
  /** A 429/455 backoff runs: wait this long (Redis clock) before the next create. */
  backoffMs: number;
  /**
   * False when no 429/455 backoff record exists at all (none running, none spent and waiting to
   * be cleared by a success): a create accepted after this read has no ladder to reset.
   */
  backoffSet?: boolean;
}

const READ_GATE = RedisScript.fromFile(new URL("./scripts/read-gate.lua", import.meta.url));
const READ_BACKOFF = RedisScript.fromFile(new URL("./scripts/backoff-read.lua", import.meta.url));

/**
 * `keyId`: where the key's pause lives; `windowId`: where its account's 429/455 backoff lives (KIE
 * limits per account). One round trip when they are one id; two sent together when the key
 * belongs to a named account (two hash tags: two slots on a cluster, so never one script).
 * `scriptClock`: "now" of the backoff check, epoch ms; absent, the Redis server's clock.
 */
export async function readSubmitGate(
  redis: RedisClient,
  keyId: string,
  windowId: string,
  scriptClock?: ScriptClock,
): Promise<SubmitGate> {
  if (keyId === windowId) {
    const keys = [accountKey(keyId, "pause"), accountKey(keyId, "backoff")];
    const [pause, backoffMs, backoffSet] = (await READ_GATE.run(redis, keys, [], scriptClock)) as [
      unknown,
      number,
      number,
    ];
    return {
      paused: parsePauseState(hashFromReply(pause)),
      backoffMs: Number(backoffMs),
      backoffSet: Number(backoffSet) === 1,
    };
  }
  const [pause, backoff] = await Promise.all([
    redis.hgetall(accountKey(keyId, "pause")),
    READ_BACKOFF.run(redis, [accountKey(windowId, "backoff")], [], scriptClock) as Promise<
      [string | null, number, number, number]
    >,
  ]);
  const [kind, , untilMs, now] = backoff;
  return {
    paused: parsePauseState(pause),
    backoffMs: Math.max(0, Number(untilMs) - Number(now)),
    backoffSet: kind !== null,
  };
}
