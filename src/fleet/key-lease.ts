import { type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountId, accountKey } from "./account.js";

/**
 * Which workers hold which API key, per key (under the key's own id, one hash tag):
 * - the key's window mapping: the account window it counts in ("own", or "account:<name>" from
 *   KIE_ACCOUNTS). Every worker of every deployment using the key must agree, or the key would
 *   count in two windows and the account's rate be passed. The first worker writes it; it lives
 *   while any worker refreshes it and expires `ttlMs` after the last one stops;
 * - the deployment's holders of the key per stage, each with a lease it refreshes: a poll job whose
 *   task's key this worker lacks waits while some live worker that polls holds it, and an archive
 *   job whose result URL must be asked for again with a key it lacks, while some live worker that
 *   archives holds it (jobs go to any worker of their stage). A worker is a holder for the stages
 *   it runs: one that only submits with the key would never take either job.
 */

/** How long a worker's hold (and the key's window mapping) outlives its last refresh. */
export const KEY_LEASE_TTL_MS = 60_000;
/** How often a worker refreshes its holds. */
const KEY_LEASE_EVERY_MS = 15_000;

/** The stages whose jobs make calls that only a task's own key may make. */
export type KeyRole = "poll" | "archive";
export const KEY_ROLES: readonly KeyRole[] = ["poll", "archive"];

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
  /** The stages it runs of those that need a task's own key: it is listed among their holders. @defaultValue both */
  roles?: readonly KeyRole[];
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

/** The pollers keep the name the holders had when only pollers were. */
const ROLE_PART: Record<KeyRole, string> = { poll: "", archive: "archive-" };

function holdersKeyOf(deployment: string, id: string, role: KeyRole): string {
  return accountKey(id, `${ROLE_PART[role]}holders:${deploymentTag(deployment)}`);
}

function waitKeyOf(deployment: string, id: string, role: KeyRole): string {
  return accountKey(id, `${ROLE_PART[role]}waiting:${deploymentTag(deployment)}`);
}

/**
 * Notes that a job of the deployment's `role` stage waits for the key `id`, which no running worker
 * of that stage holds (the poll's `keyMissing`, the archive's refresh): when, epoch ms. It expires
 * KEY_WAIT_TTL_MS after the last note, so `status` names the key while jobs wait for it, not for good.
 */
export async function noteKeyWait(
  redis: RedisClient,
  deployment: string,
  id: string,
  now: number,
  role: KeyRole,
): Promise<void> {
  await redis.set(waitKeyOf(deployment, id, role), String(now), "PX", KEY_WAIT_TTL_MS);
}

/** A key jobs of the deployment's `role` stage waited for lately, that no live worker of it holds now. */
export interface KeyWait {
  /** The key's short hash. */
  id: string;
  /** The stage whose jobs wait. */
  role: KeyRole;
  /** When a job last waited for it, epoch ms. */
  lastAt: number;
}

/**
 * Of the keys `ids`, those a stage's jobs waited for within KEY_WAIT_TTL_MS and no live worker of
 * that stage holds now: one entry per key and stage.
 */
export async function unheldKeyWaits(
  redis: RedisClient,
  deployment: string,
  ids: Iterable<string>,
  scriptClock?: ScriptClock,
): Promise<KeyWait[]> {
  // One key of its own slot each: asked side by side, not one after another.
  const found = await Promise.all(
    [...ids].flatMap((id) =>
      KEY_ROLES.map(async (role): Promise<KeyWait | undefined> => {
        const noted = await redis.get(waitKeyOf(deployment, id, role));
        if (noted === null || (await heldBy(redis, deployment, id, role, scriptClock))) return undefined;
        return { id, role, lastAt: Number(noted) };
      }),
    ),
  );
  return found.filter((wait): wait is KeyWait => wait !== undefined);
}

/** Whether some live worker of the deployment's `role` stage holds the key `id` (key-held.lua). */
async function heldBy(
  redis: RedisClient,
  deployment: string,
  id: string,
  role: KeyRole,
  scriptClock: ScriptClock | undefined,
): Promise<boolean> {
  return Number(await HELD.run(redis, [holdersKeyOf(deployment, id, role)], [], scriptClock)) > 0;
}

export class KeyLeases {
  private readonly ttlMs: number;
  private readonly everyMs: number;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<unknown> = Promise.resolve();
  /** When this worker last noted a wait for each key and stage (`noteWait`). */
  private readonly noted = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: readonly LeasedKey[],
    private readonly options: KeyLeaseOptions,
  ) {
    this.ttlMs = options.ttlMs ?? KEY_LEASE_TTL_MS;
    this.everyMs = options.everyMs ?? KEY_LEASE_EVERY_MS;
  }

  private holdersKey(id: string, role: KeyRole): string {
    return holdersKeyOf(this.options.deployment, id, role);
  }

  /** Holds every key, or none where the stored mapping differs: those are returned. */
  async claim(): Promise<KeyLeaseConflict[]> {
    const conflicts: KeyLeaseConflict[] = [];
    const roles = this.options.roles ?? KEY_ROLES;
    for (const key of this.keys) {
      const mine = mappingOf(key);
      const stored = (await LEASE.run(
        this.redis,
        [accountKey(key.id, "window"), this.holdersKey(key.id, "poll"), this.holdersKey(key.id, "archive")],
        [
          mine,
          this.ttlMs,
          this.options.worker,
          roles.includes("poll") ? "1" : "",
          roles.includes("archive") ? "1" : "",
        ],
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

  /** Whether some live worker of the deployment's `role` stage holds the key `id`. */
  async held(id: string, role: KeyRole): Promise<boolean> {
    return heldBy(this.redis, this.options.deployment, id, role, this.options.scriptClock);
  }

  /**
   * Notes that a job of the `role` stage waits for the key `id`, which no live worker of that stage
   * holds (`noteKeyWait`): at most once a minute per key and stage from this worker (every waiting
   * row's job asks; the note lasts 15).
   */
  async noteWait(id: string, role: KeyRole): Promise<void> {
    const now = Date.now();
    const at = `${role} ${id}`;
    if (now - (this.noted.get(at) ?? Number.NEGATIVE_INFINITY) < KEY_WAIT_NOTE_EVERY_MS) return;
    await noteKeyWait(this.redis, this.options.deployment, id, now, role);
    this.noted.set(at, now);
  }

  /** Stops refreshing and lets go of every hold at once (the mapping expires by itself). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
    for (const key of this.keys)
      for (const role of KEY_ROLES) await this.redis.zrem(this.holdersKey(key.id, role), this.options.worker);
  }
}
