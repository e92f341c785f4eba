import { type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountId, accountKey } from "./account.js";

/**
 * Which workers hold which API key, per key (under the key's own id, one hash tag):
 * - the key's window mapping: the account window it counts in ("own", or "account:<name>" from
 *   KIE_ACCOUNTS). Every worker of every deployment using the key must agree, or the key would
 *   count in two windows and the account's rate be passed. The first worker writes it; it lives
 *   while any worker refreshes it and expires `ttlMs` after the last one stops;
 * - the deployment's holders of the key, each with a lease it refreshes: a poll job whose task's
 *   key this worker lacks waits while some live worker holds it (poll jobs go to any worker).
 *   Only a worker running the poll stage is a holder: one that only submits or archives with
 *   the key would never take the job, and the task would wait for it forever.
 */

/** How long a worker's hold (and the key's window mapping) outlives its last refresh. */
export const KEY_LEASE_TTL_MS = 60_000;
/** How often a worker refreshes its holds. */
const KEY_LEASE_EVERY_MS = 15_000;

export interface LeasedKey {
  /** The key's short hash. */
  readonly id: string;
  /** Its account name (KIE_ACCOUNTS); absent: a window of its own. */
  readonly account?: string | undefined;
}

/** A key whose stored window mapping differs from this worker's: the worker must not use it. */
export interface KeyLeaseConflict {
  readonly id: string;
  /** What this worker says, and what the running workers said, in words ("account \"team\""). */
  readonly mine: string;
  readonly stored: string;
}

export interface KeyLeaseOptions {
  /** The deployment (queue prefix): holders are counted per deployment. */
  deployment: string;
  /** This worker's id among the holders. */
  worker: string;
  /** Whether it runs the poll stage, so is listed among the holders. @defaultValue true */
  polls?: boolean;
  /** @defaultValue KEY_LEASE_TTL_MS */
  ttlMs?: number;
  /** @defaultValue KEY_LEASE_EVERY_MS */
  everyMs?: number;
  /** "Now" of the scripts, epoch ms. @defaultValue the Redis server's clock */
  scriptClock?: ScriptClock;
  /** A refresh found a conflict (a mapping that expired and was taken by another configuration) or failed. */
  onRefreshProblem?: (problem: { conflicts?: KeyLeaseConflict[]; error?: unknown }) => void;
}

const LEASE = RedisScript.fromFile(new URL("./scripts/key-lease.lua", import.meta.url));
const HELD = RedisScript.fromFile(new URL("./scripts/key-held.lua", import.meta.url));

/** The stored form of a key's window. */
function mappingOf(key: LeasedKey): string {
  return key.account === undefined ? "own" : `account:${key.account}`;
}

/** A stored mapping in words, for messages (account names and "own window": never a key). */
function describeMapping(value: string): string {
  return value.startsWith("account:") ? `account "${value.slice(8)}"` : "a window of its own";
}

/**
 * How long a note that rows wait for a key (`noteKeyWait`) lasts after the last one: longer than
 * the slowest waiting job's recheck (5 minutes), short enough that `status` stops naming the key
 * soon after nothing waits for it any more.
 */
export const KEY_WAIT_TTL_MS = 15 * 60_000;
/** How often one worker writes that note, per key, at most. */
const KEY_WAIT_NOTE_EVERY_MS = 60_000;

/** The deployment's name hashed: a queue prefix may hold characters a key name may not. */
function deploymentTag(deployment: string): string {
  return accountId(`kie-batch deployment ${deployment}`);
}

function holdersKeyOf(deployment: string, id: string): string {
  return accountKey(id, `holders:${deploymentTag(deployment)}`);
}

function waitKeyOf(deployment: string, id: string): string {
  return accountKey(id, `waiting:${deploymentTag(deployment)}`);
}

/**
 * Notes that a row of the deployment waits for the key `id`, which no running worker that polls
 * holds (the poll's `keyMissing`): when, epoch ms. It expires KEY_WAIT_TTL_MS after the last note,
 * so `status` names the key while rows wait for it, not for good.
 */
export async function noteKeyWait(
  redis: RedisClient,
  deployment: string,
  id: string,
  now: number,
): Promise<void> {
  await redis.set(waitKeyOf(deployment, id), String(now), "PX", KEY_WAIT_TTL_MS);
}

/** A key rows of the deployment waited for lately, that no live worker holds now. */
export interface KeyWait {
  /** The key's short hash. */
  id: string;
  /** When a row last waited for it, epoch ms. */
  lastAt: number;
}

/** Of the keys `ids`, those rows waited for within KEY_WAIT_TTL_MS and no live worker holds now. */
export async function unheldKeyWaits(
  redis: RedisClient,
  deployment: string,
  ids: Iterable<string>,
  scriptClock?: ScriptClock,
): Promise<KeyWait[]> {
  // One key of its own slot each: asked side by side, not one after another.
  const found = await Promise.all(
    [...ids].map(async (id): Promise<KeyWait | undefined> => {
      const noted = await redis.get(waitKeyOf(deployment, id));
      if (noted === null || (await heldBy(redis, deployment, id, scriptClock))) return undefined;
      return { id, lastAt: Number(noted) };
    }),
  );
  return found.filter((wait): wait is KeyWait => wait !== undefined);
}

/** Whether some live worker of the deployment holds the key `id` (key-held.lua). */
async function heldBy(
  redis: RedisClient,
  deployment: string,
  id: string,
  scriptClock: ScriptClock | undefined,
): Promise<boolean> {
  return Number(await HELD.run(redis, [holdersKeyOf(deployment, id)], [], scriptClock)) > 0;
}

export class KeyLeases {
  private readonly ttlMs: number;
  private readonly everyMs: number;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<unknown> = Promise.resolve();
  /** When this worker last noted a wait for each key (`noteWait`). */
  private readonly noted = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: readonly LeasedKey[],
    private readonly options: KeyLeaseOptions,
  ) {
    this.ttlMs = options.ttlMs ?? KEY_LEASE_TTL_MS;
    this.everyMs = options.everyMs ?? KEY_LEASE_EVERY_MS;
  }

  private holdersKey(id: string): string {
    return holdersKeyOf(this.options.deployment, id);
  }

  /** Holds every key, or none where the stored mapping differs: those are returned. */
  async claim(): Promise<KeyLeaseConflict[]> {
    const conflicts: KeyLeaseConflict[] = [];
    for (const key of this.keys) {
      const mine = mappingOf(key);
      const stored = (await LEASE.run(
        this.redis,
        [accountKey(key.id, "window"), this.holdersKey(key.id)],
        [mine, this.ttlMs, this.options.worker, this.options.polls === false ? "" : "1"],
        this.options.scriptClock,
      )) as string | null;
      if (typeof stored === "string")
        conflicts.push({ id: key.id, mine: describeMapping(mine), stored: describeMapping(stored) });
    }
    return conflicts;
  }

  /** Refreshes the holds every `everyMs` until `close`. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.refreshing = this.claim().then(
        (conflicts) => {
          if (conflicts.length > 0) this.options.onRefreshProblem?.({ conflicts });
        },
        (error: unknown) => this.options.onRefreshProblem?.({ error }),
      );
    }, this.everyMs);
    this.timer.unref();
  }

  /** Whether some live worker of the deployment holds the key `id`. */
  async held(id: string): Promise<boolean> {
    return heldBy(this.redis, this.options.deployment, id, this.options.scriptClock);
  }

  /**
   * Notes that a row waits for the key `id`, which no live worker holds (`noteKeyWait`): at most
   * once a minute per key from this worker (every waiting row's job asks; the note lasts 15).
   */
  async noteWait(id: string): Promise<void> {
    const now = Date.now();
    if (now - (this.noted.get(id) ?? Number.NEGATIVE_INFINITY) < KEY_WAIT_NOTE_EVERY_MS) return;
    await noteKeyWait(this.redis, this.options.deployment, id, now);
    this.noted.set(id, now);
  }

  /** Stops refreshing and lets go of every hold at once (the mapping expires by itself). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
    for (const key of this.keys) await this.redis.zrem(this.holdersKey(key.id), this.options.worker);
  }
}
