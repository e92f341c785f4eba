import { answerWithin } from "../core/deadline.js";
import type { RedisClient } from "./script.js";

/**
 * The Redis server's clock, which every script stamps rows with (the prelude's `now_ms()` reads
 * TIME): the time a row entered its state, ended or was last updated. A reader that compares those
 * stamps with "now" must take now from the same clock: a worker whose own clock lags the server's
 * by more than the reconciler's settle time would find every row "too young" and repair none.
 * `now()` is the local clock plus the offset measured at the last `sync()` (a TIME read, halfway
 * through its round trip); before the first sync, the local clock.
 *
 * On a Redis Cluster each batch's rows are stamped by its own slot's master, so `sync()` reads
 * every master's TIME (side by side, each within 5 s; a master that does not answer is passed
 * over, and with none known yet the keyless TIME is asked) and keeps the earliest: no batch's rows are judged older than
 * their own master's clock says (a row repaired or frozen before it settled), and a batch on a
 * master ahead of the earliest by D is swept up to D late. (A keyless TIME would go to any one
 * master, and a master whose clock lags it by more than the settle time would have its rows
 * passed over by every sweep that asked another.)
 */
export interface ServerClock {
  now(): number;
  /** Reads TIME and keeps the offset; a failed read (every master's) keeps the last one and rejects. */
  sync(): Promise<void>;
}

type TimeSource = Pick<RedisClient, "time">;

/** How long one master's TIME may take: a half-open connection must not hold the sweep. */
const TIME_WAIT_MS = 5_000;

/** A single Redis, or a Cluster (`isCluster`) whose masters each answer TIME. */
type TimeClient = TimeSource & { isCluster?: boolean; nodes?(role: "master"): TimeSource[] };

export function serverClock(redis: TimeClient, local: () => number = Date.now): ServerClock {
  let offset = 0;
  const offsetOf = async (node: TimeSource): Promise<number> => {
    const sent = local();
    const [seconds, micros] = await answerWithin(node.time(), TIME_WAIT_MS, "TIME");
    const received = local();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sent + received) / 2;
  };
  return {
    now: () => local() + offset,
    async sync() {
      // No master known (a Cluster reconnecting): the keyless TIME, which waits for one.
      const masters = redis.isCluster === true && redis.nodes ? redis.nodes("master") : [];
      const nodes = masters.length > 0 ? masters : [redis];
      const read = await Promise.allSettled(nodes.map(offsetOf));
      const offsets = read.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
      if (offsets.length === 0) throw (read[0] as PromiseRejectedResult).reason;
      offset = Math.min(...offsets);
    },
  };
}
