import { type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import { accountKey } from "./account.js";

/**
 * KIE_MAX_IN_FLIGHT: how many tasks of one account generate at once, fleet-wide. A sorted set of
 * slots scored by when each was taken or last touched (Redis clock, ms). The set is the account's,
 * shared by every deployment using the key, so a slot is named by its deployment and job key
 * (`<KIE_QUEUE_PREFIX>:<batch>/<row>`): one deployment's `cancel` or `purge` of a batch never frees
 * the slots of another's batch of the same name. Slots taken by versions before deployments named
 * them are named by the job key alone: they are touched and freed too (a job's own name first), so
 * a task in flight across an upgrade neither holds its slot for the hour it takes to go stale nor
 * loses it; none is taken so.
 *
 * Protocol: a submit takes a slot (keyed by the row's job key) BEFORE the create request, so the
 * cap holds even while requests are on the wire; the poll stage touches it on each status call
 * and releases it when the task leaves "generating" (success, failure, give-up).
 */

/** A slot untouched this long belongs to a job that is gone; it is dropped, not leaked forever. */
export const DEFAULT_IN_FLIGHT_STALE_MS = 60 * 60_000;

export interface InFlightOptions {
  /** `accountId(apiKey)`. */
  accountId: string;
  /** The deployment whose jobs take and free slots here: its KIE_QUEUE_PREFIX. */
  deployment: string;
  /**
   * Age after which an untouched slot is dropped. Must exceed the longest gap between touches
   * (the poll schedule's, POLL_MAX_GAP_MS: a third of the default) with room to spare; it also
   * expires an idle account's set.
   * @defaultValue DEFAULT_IN_FLIGHT_STALE_MS (1 hour)
   */
  staleAfterMs?: number;
  /** "Now" of the slot scripts, epoch ms. @defaultValue the Redis server's clock */
  scriptClock?: ScriptClock;
}

const TRY_ACQUIRE = RedisScript.fromFile(new URL("./scripts/in-flight-acquire.lua", import.meta.url));
const TOUCH = RedisScript.fromFile(new URL("./scripts/in-flight-touch.lua", import.meta.url));
const COUNT = RedisScript.fromFile(new URL("./scripts/in-flight-count.lua", import.meta.url));
const RELEASE = RedisScript.fromFile(new URL("./scripts/in-flight-release.lua", import.meta.url));

function checkStaleAfter(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 1)
    throw new RangeError("InFlight: staleAfterMs must be an integer >= 1");
  return ms;
}

export class InFlight {
  private readonly key: string;
  private readonly deployment: string;
  readonly staleAfterMs: number;
  private readonly scriptClock: ScriptClock | undefined;

  constructor(
    private readonly redis: RedisClient,
    options: InFlightOptions,
  ) {
    this.key = accountKey(options.accountId, "in-flight");
    if (!/^[A-Za-z0-9._-]+$/.test(options.deployment))
      throw new TypeError(`InFlight: not a deployment (queue prefix): ${JSON.stringify(options.deployment)}`);
    this.deployment = options.deployment;
    this.staleAfterMs = checkStaleAfter(options.staleAfterMs ?? DEFAULT_IN_FLIGHT_STALE_MS);
    this.scriptClock = options.scriptClock;
  }

  /**
   * Takes a slot for `jobKey` if fewer than `max` are held (0 = no cap: always true, still
   * counted for status). Idempotent: a job that already holds a slot keeps it and gets true, so
   * a retried submit never needs a second slot.
   */
  async tryAcquire(jobKey: string, max: number): Promise<boolean> {
    if (!Number.isSafeInteger(max) || max < 0)
      throw new RangeError("tryAcquire: max must be an integer >= 0");
    const reply = await TRY_ACQUIRE.run(
      this.redis,
      [this.key],
      [this.member(jobKey), max, this.staleAfterMs],
      this.scriptClock,
    );
    return reply === 1;
  }

  /** Marks the slot as alive (each status check); false when the job holds none. */
  async touch(jobKey: string): Promise<boolean> {
    const args = [this.member(jobKey), this.staleAfterMs, jobKey];
    return (await TOUCH.run(this.redis, [this.key], args, this.scriptClock)) === 1;
  }

  /** Frees the slot; false when the job held none (released before, or dropped as stale). */
  async release(jobKey: string): Promise<boolean> {
    return (await this.releaseMany([jobKey])) > 0;
  }

  /** Frees the slots of `jobKeys` (those held), 500 a command; returns how many were freed. */
  async releaseMany(jobKeys: readonly string[]): Promise<number> {
    let released = 0;
    for (let at = 0; at < jobKeys.length; at += 500) {
      const names = jobKeys.slice(at, at + 500).flatMap((jobKey) => [this.member(jobKey), jobKey]);
      released += Number(await RELEASE.run(this.redis, [this.key], names, this.scriptClock));
    }
    return released;
  }

  /**
   * Frees every slot of `batch`'s jobs (`purge`: their jobs are gone, and a slot would otherwise
   * count against the cap for an hour until it went stale). Returns how many were freed.
   */
  async releaseBatch(batch: string, options: { ownOnly?: boolean } = {}): Promise<number> {
    // Batch names and prefixes are [A-Za-z0-9._-]: nothing in one is a glob character. Slots an
    // earlier version took (the job key alone) go too: a deployment still running such a version
    // on the same key with a batch of the same name loses them, as it did before (upgrade
    // together); `ownOnly`: this version's names only (a batch this deployment may not have).
    const own = this.member(`${batch}/*`);
    const patterns = options.ownOnly === true ? [own] : [own, `${batch}/*`];
    let released = 0;
    for (const pattern of patterns) {
      let cursor = "0";
      do {
        const [next, reply] = await this.redis.zscan(this.key, cursor, "MATCH", pattern, "COUNT", 500);
        cursor = next;
        const members = reply.filter((_, i) => i % 2 === 0);
        if (members.length > 0) released += await this.redis.zrem(this.key, ...members);
      } while (cursor !== "0");
    }
    return released;
  }

  /** The slot's name in the account's set: the deployment's, so another's same job key is another slot. */
  private member(jobKey: string): string {
    return `${this.deployment}:${jobKey}`;
  }

  /** Slots held now, stale ones excluded. */
  async count(): Promise<number> {
    return Number(await COUNT.run(this.redis, [this.key], [this.staleAfterMs], this.scriptClock));
  }
}
