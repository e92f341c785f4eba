import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisScript } from "../../src/redis/script.js";
import { testRedis } from "../helpers/redis.js";

let redis: Redis;

beforeAll(() => {
  redis = testRedis();
});

afterAll(async () => {
  await redis.quit();
});

describe("RedisScript", () => {
  it("loads a script the server does not know (as after a Redis restart), then runs it by sha", async () => {
    // ARGV[1] is the clock slot every script has; the caller's arguments start at ARGV[2].
    const script = new RedisScript("echo", `-- ${randomUUID()}\nreturn ARGV[2] .. KEYS[1]`);
    expect(await redis.script("EXISTS", script.sha)).toEqual([0]);
    expect(await script.run(redis, ["k"], ["v-"])).toBe("v-k");
    expect(await redis.script("EXISTS", script.sha)).toEqual([1]);
    expect(await script.run(redis, ["k2"], ["w-"])).toBe("w-k2");
    await expect(new RedisScript("bad", "return redis.call('NOPE')").run(redis, [], [])).rejects.toThrow();
  });

  it("reads the caller's clock when given one, else the Redis server's clock", async () => {
    const script = RedisScript.fromFile(new URL("../fixtures/lua/clock.lua", import.meta.url));
    expect(script.name).toBe("clock");
    expect(await script.run(redis, [], [], { now: () => 1_700_000_000_123.456 })).toEqual([
      1_700_000_000_123,
      1_700_000_000_123_456,
      "from an include",
    ]);

    const [seconds, micros] = await redis.time();
    const [ms, us] = (await script.run(redis, [], [])) as [number, number];
    const serverUs = Number(seconds) * 1_000_000 + Number(micros);
    expect(us - serverUs).toBeGreaterThanOrEqual(0);
    expect(us - serverUs).toBeLessThan(5_000_000);
    expect(ms).toBe(Math.floor(us / 1_000));
  });
});
