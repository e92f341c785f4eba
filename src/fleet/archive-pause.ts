import { type RedisClient, RedisScript, type ScriptClock } from "../redis/script.js";
import type { PauseOptions } from "./pause.js";
import { type ArchivePauseKind, isArchivePauseKind, PAUSE_POLICY, type PausePolicy } from "./policy.js";

/**
 * The fleet's pause of the archive stage, one per deployment (queue prefix), in the hash
 * `{<prefix>}:archive-pause`. Per deployment, not per KIE account: the store is the deployment's
 * (S3_BUCKET / ARCHIVE_DIR), two deployments on one key may archive to different buckets, and one
 * deployment's workers share one store whatever keys they submit with. A store outage does not
 * stop submissions (their images wait in `archiving`, which is what KIE_FILE_LIFETIME allows
 * for); only a row that reuse would copy from the store reads it, and waits rather than be paid for. The pause, resume and probe-claim scripts are the submission
 * pause's own: they work on any pause hash.
 */

export interface ArchivePauseState {
  kind: ArchivePauseKind;
  /** For status, the dashboard and alerts; never holds a credential. */
  reason: string;
  /** When the pause began (epoch ms, Redis clock). */
  since: number;
  nextProbeAt?: number;
  probeEveryMs?: number;
  /** A full disk's pause: the free bytes its probe asks of the store first (KIE_ARCHIVE_MIN_FREE). */
  minFreeBytes?: number;
  /** A pause for the store's refusal of the SDK's checksums: its probe writes through a multipart upload too. */
  probeMultipart?: boolean;
}

/** An archive pause's options: a probe's, and for a full disk, the free space its probe asks for. */
export interface ArchivePauseOptions extends PauseOptions {
  minFreeBytes?: number;
  probeMultipart?: boolean;
}

/** What the archive stage sees of its pause: an object literal in tests. */
export interface ArchivePausePort {
  get(): Promise<ArchivePauseState | null>;
  /** Records a pause; true when this call started it (so exactly one worker logs and alerts). */
  pause(kind: ArchivePauseKind, reason: string, options?: ArchivePauseOptions): Promise<boolean>;
  /** Clears a pause of `kind` (after a successful probe). */
  resume(kind: ArchivePauseKind): Promise<void>;
  /** True for exactly one caller fleet-wide once the pause's probe is due. */
  claimProbe(): Promise<boolean>;
}

const PAUSE = RedisScript.fromFile(new URL("./scripts/pause.lua", import.meta.url));
const RESUME = RedisScript.fromFile(new URL("./scripts/resume.lua", import.meta.url));
const CLAIM_PROBE = RedisScript.fromFile(new URL("./scripts/claim-probe.lua", import.meta.url));

/** `{<prefix>}:archive-pause`: the deployment's hash tag, as its queues and ledger have. */
function archivePauseKey(queuePrefix: string): string {
  return `{${queuePrefix}}:archive-pause`;
}

function optionalNumber(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** A pause hash as an ArchivePauseState; null when there is none. An unknown kind still pauses. */
function parseArchivePauseState(hash: Record<string, string>): ArchivePauseState | null {
  if (Object.keys(hash).length === 0) return null;
  const kind = hash.kind !== undefined && isArchivePauseKind(hash.kind) ? hash.kind : "store-unavailable";
  const state: ArchivePauseState = {
    kind,
    reason: hash.reason ?? "",
    since: optionalNumber(hash.since) ?? 0,
  };
  const nextProbeAt = optionalNumber(hash.nextProbeAt);
  const probeEveryMs = optionalNumber(hash.probeEveryMs);
  const minFreeBytes = optionalNumber(hash.minFreeBytes);
  if (nextProbeAt !== undefined) state.nextProbeAt = nextProbeAt;
  if (probeEveryMs !== undefined) state.probeEveryMs = probeEveryMs;
  if (minFreeBytes !== undefined) state.minFreeBytes = minFreeBytes;
  if (hash.probeMultipart === "1") state.probeMultipart = true;
  return state;
}

export class ArchivePause implements ArchivePausePort {
  private readonly key: string;
  private readonly scriptClock: ScriptClock | undefined;

  /** `scriptClock`: "now" of the pause scripts, epoch ms. @defaultValue the Redis server's clock */
  constructor(
    private readonly redis: RedisClient,
    options: { queuePrefix: string; scriptClock?: ScriptClock },
  ) {
    this.key = archivePauseKey(options.queuePrefix);
    this.scriptClock = options.scriptClock;
  }

  async pause(kind: ArchivePauseKind, reason: string, options: ArchivePauseOptions = {}): Promise<boolean> {
    const policy: PausePolicy = PAUSE_POLICY[kind];
    const every = options.probeEveryMs ?? policy.probeEveryMs ?? 60_000;
    const after = options.probeAfterMs ?? every;
    const floor = options.minFreeBytes === undefined ? "" : whole(options.minFreeBytes, "minFreeBytes");
    const args = [
      kind,
      policy.rank,
      reason,
      whole(after, "probeAfterMs"),
      whole(every, "probeEveryMs"),
      floor,
      options.probeMultipart ? "1" : "",
    ];
    const [isNew] = (await PAUSE.run(this.redis, [this.key], args, this.scriptClock)) as [number, unknown];
    return isNew === 1;
  }

  async resume(kind: ArchivePauseKind): Promise<void> {
    await RESUME.run(this.redis, [this.key], [kind], this.scriptClock);
  }

  async get(): Promise<ArchivePauseState | null> {
    return parseArchivePauseState(await this.redis.hgetall(this.key));
  }

  async claimProbe(): Promise<boolean> {
    const reply = await CLAIM_PROBE.run(this.redis, [this.key], [], this.scriptClock);
    return reply !== null;
  }
}

function whole(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be an integer >= 0`);
  return value;
}

/**
 * `port` with a short memory of "not paused": `get` answers null without Redis for `maxAgeMs`
 * after a read found no pause, so an archive job does not ask Redis before each row. A pause set
 * by another worker is seen within `maxAgeMs` (an archive job that starts meanwhile meets the
 * store's refusal itself and pauses again); one set or found here is seen at once.
 */
export function recentlyOpen(port: ArchivePausePort, maxAgeMs = 1_000): ArchivePausePort {
  let openSeenAt = Number.NEGATIVE_INFINITY;
  // Bumped by each pause set here: a read sent before it and answered after it is not "open now".
  let pauses = 0;
  return {
    async get() {
      if (performance.now() - openSeenAt < maxAgeMs) return null;
      const at = pauses;
      const pause = await port.get();
      if (at === pauses) openSeenAt = pause === null ? performance.now() : Number.NEGATIVE_INFINITY;
      return pause;
    },
    async pause(kind, reason, options) {
      pauses++;
      openSeenAt = Number.NEGATIVE_INFINITY;
      return await port.pause(kind, reason, options);
    },
    resume: (kind) => port.resume(kind),
    claimProbe: () => port.claimProbe(),
  };
}
