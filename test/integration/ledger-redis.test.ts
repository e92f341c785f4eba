import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis, pingRedis } from "../../src/app/connections.js";
import { redactUrl } from "../../src/core/redact-url.js";
import { REDIS_URL } from "../helpers/redis.js";

describe("redactUrl", () => {
  it.each([
    ["redis://:secret@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"],
    ["redis://user:secret@redis.internal:6380/2", "redis://user:***@redis.internal:6380/2"],
    ["rediss://default:s%40cret@cache.example.com", "rediss://default:***@cache.example.com"],
    ["redis://127.0.0.1:6379", "redis://127.0.0.1:6379"],
    ["redis://127.0.0.1:6379/0?password=secret&db=1", "redis://127.0.0.1:6379/0?password=***&db=1"],
    ["127.0.0.1:6379", "127.0.0.1:6379"],
  ])("%s -> %s", (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe("pingRedis", () => {
  it("resolves when Redis answers", async () => {
    await expect(pingRedis(REDIS_URL, 2_000)).resolves.toBeUndefined();
  });

  it("rejects quickly for a closed port, naming the URL without its password", async () => {
    const started = performance.now();
    const error = await pingRedis("redis://:secret@127.0.0.1:1", 2_000).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(performance.now() - started).toBeLessThan(2_500);
    expect(error?.message).toMatch(/^Redis is not answering at redis:\/\/:\*\*\*@127\.0\.0\.1:1: /);
    expect(error?.message).not.toContain("secret");
  });

  describe("against a server that accepts connections and never answers", () => {
    let silent: Server;
    let port: number;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      silent = createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.resume(); // read and drop everything, answer nothing
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      port = (silent.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it("gives up at the timeout and closes its connection", async () => {
      const started = performance.now();
      await expect(pingRedis(`redis://:hunter22@127.0.0.1:${port}`, 300)).rejects.toThrow(
        `Redis is not answering at redis://:***@127.0.0.1:${port}: no answer within 300 ms`,
      );
      expect(performance.now() - started).toBeLessThan(1_500);
      await expect.poll(() => sockets.size, { timeout: 1_000 }).toBe(0);
    });
  });
});

describe("connectRedis", () => {
  it("gives a client BullMQ workers accept (maxRetriesPerRequest null) that talks to Redis", async () => {
    const client = connectRedis(REDIS_URL);
    try {
      expect(client.options.maxRetriesPerRequest).toBeNull();
      expect(await client.ping()).toBe("PONG");
    } finally {
      await client.quit();
    }
  });

  it("connects lazily when asked, and takes a finite retry count for CLI use", async () => {
    const client = connectRedis(REDIS_URL, { lazy: true, maxRetriesPerRequest: 1 });
    try {
      expect(client.status).toBe("wait");
      expect(client.options.maxRetriesPerRequest).toBe(1);
      expect(await client.ping()).toBe("PONG");
    } finally {
      await client.quit();
    }
  });
});
