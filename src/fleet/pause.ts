import { hashFromReply, type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountKey } from "./account.js";
import { isPauseKind, PAUSE_POLICY, type PauseKind, type PausePolicy } from "./policy.js";

/**
 * The fleet's pause of submissions, one per account, in the hash `...:pause`. Workers read it
 * before each submit; no job fails while it is set. Timestamps are the Redis clock (ms).
 */

export interface PauseState {
  kind: PauseKind;
  /** For status and logs; never holds the API key. */
  reason: string;
  /** When the pause began (epoch ms, Redis clock). */
  since: number;
  /** When the next probe is due (epoch ms, Redis clock); only kinds that end by themselves. */
  nextProbeAt?: number;
  /** Probe interval; only kinds that end by themselves. */
  probeEveryMs?: number;
}

export interface PauseOptions {
  /** Delay before the first probe. @defaultValue probeEveryMs */
  probeAfterMs?: number;
  /** Probe interval. @defaultValue PAUSE_POLICY[kind].probeEveryMs (none: no probes) */
  probeEveryMs?: number;
}

const PAUSE = RedisScript.fromFile(new URL("./scripts/pause.lua", import.meta.url));
const RESUME = RedisScript.fromFile(new URL("./scripts/resume.lua", import.meta.url));
const CLAIM_PROBE = RedisScript.fromFile(new URL("./scripts/claim-probe.lua", import.meta.url));

function optionalNumber(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * A pause hash as a PauseState; null when there is none. A hash the code does not understand
 * still pauses (as "manual"): when in doubt, stop spending.
 */
export function parsePauseState(hash: Record<string, string>): PauseState | null {
  if (Object.keys(hash).length === 0) return null;
  const kind = hash.kind !== undefined && isPauseKind(hash.kind) ? hash.kind : "manual";
  const state: PauseState = { kind, reason: hash.reason ?? "", since: optionalNumber(hash.since) ?? 0 };
  const nextProbeAt = optionalNumber(hash.nextProbeAt);
  const probeEveryMs = optionalNumber(hash.probeEveryMs);
  if (nextProbeAt !== undefined) state.nextProbeAt = nextProbeAt;
  if (probeEveryMs !== undefined) state.probeEveryMs = probeEveryMs;
  return state;
}

function checkDelay(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be an integer >= 0`);
  return value;
}

export class FleetPause {
  private readonly key: string;
  private readonly scriptClock: ScriptClock | undefined;

  /** `scriptClock`: "now" of the pause scripts, epoch ms. @defaultValue the Redis server's clock */
  constructor(
    private readonly redis: RedisClient,
    options: { accountId: string; scriptClock?: ScriptClock },
  ) {
    this.key = accountKey(options.accountId, "pause");
    this.scriptClock = options.scriptClock;
  }

  /**
   * Pauses submissions fleet-wide unless a pause of this kind (or one that outranks it) is
   * already set. `isNew` is true for exactly one caller, the one that alerts and logs; `state` is
   * the pause in force afterwards.
   */
  async pause(
    kind: PauseKind,
    reason: string,
    options: PauseOptions = {},
  ): Promise<{ isNew: boolean; state: PauseState }> {
    const policy: PausePolicy = PAUSE_POLICY[kind];
    const { rank } = policy;
    const every = options.probeEveryMs ?? policy.probeEveryMs;
    const args: (string | number)[] = [kind, rank, reason, "", ""];
    if (every !== undefined) {
      args[3] = checkDelay(options.probeAfterMs ?? every, "probeAfterMs");
      args[4] = checkDelay(every, "probeEveryMs");
    }
    const [isNew, hash] = (await PAUSE.run(this.redis, [this.key], args, this.scriptClock)) as [
      number,
      unknown,
    ];
    return { isNew: isNew === 1, state: parsePauseState(hashFromReply(hash)) as PauseState };
  }

  /**
   * Clears the pause. Without `kind`, any pause (`kie-batch resume` also lifts a 401 or 402);
   * with it, only a pause of that kind, so a probe that succeeds cannot lift a pause an operator
   * set meanwhile. True when a pause was cleared.
   */
  async resume(kind?: PauseKind): Promise<boolean> {
    return (await RESUME.run(this.redis, [this.key], [kind ?? ""], this.scriptClock)) === 1;
  }

  async get(): Promise<PauseState | null> {
    return parsePauseState(await this.redis.hgetall(this.key));
  }

  /**
   * Claims the due probe: exactly one caller per interval gets the pause state (and makes one
   * probe, the kind's `PAUSE_POLICY[kind].probe`, then `resume(kind)` if it succeeds); everyone
   * else gets null.
   */
  async claimProbe(): Promise<PauseState | null> {
    const reply = await CLAIM_PROBE.run(this.redis, [this.key], [], this.scriptClock);
    return reply === null ? null : parsePauseState(hashFromReply(reply));
  }
}
