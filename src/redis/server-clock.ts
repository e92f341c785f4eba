import type { RedisClient } from "./script.js";

/**
 * The Redis server's clock, which every script stamps rows with (the prelude's `now_ms()` reads
 * TIME): the time a row entered its state, ended or was last updated. A reader that compares those
 * stamps with "now" must take now from the same clock: a worker whose own clock lags the server's
 * by more than the reconciler's settle time would find every row "too young" and repair none.
 * `now()` is the local clock plus the offset measured at the last `sync()` (a TIME read, halfway
 * through its round trip); before the first sync, the local clock.
 */
export interface ServerClock {
  now(): number;
  /** Reads TIME and keeps the offset; a failed read keeps the last one and rejects. */
  sync(): Promise<void>;
}

export function serverClock(redis: Pick<RedisClient, "time">, local: () => number = Date.now): ServerClock {
  let offset = 0;
  return {
    now: () => local() + offset,
    async sync() {
      const sent = local();
      const [seconds, micros] = await redis.time();
      const received = local();
      offset = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sent + received) / 2;
    },
  };
}
