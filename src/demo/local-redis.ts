import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";

/** A throwaway redis-server of the demo's own: loopback only, nothing kept on disk. */
export interface LocalRedis {
  url: string;
  stop(): Promise<void>;
}

/** True when something at `url` answers PING now (one try, no reconnects). */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    // A server loading its append-only file answers LOADING errors until it is done.
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * Resolves once `url` answers PING; rejects after `timeoutMs`, or as soon as `alive` throws (the
 * server process died: no point waiting).
 */
export async function waitForRedis(
  url: string,
  options: { timeoutMs: number; alive?: () => void },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.alive?.();
    if (await redisAnswers(url)) return;
    if (Date.now() > deadline)
      throw new Error(`redis-server did not answer at ${url} within ${options.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** True when `redis-server` can be run from the PATH. */
export async function hasRedisServer(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("redis-server", ["--version"], { stdio: "ignore" });
    child.once("error", () => resolve(false));
    child.once("exit", (code) => resolve(code === 0));
  });
}

/** A free loopback port (free when asked: bind it soon). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` on a free loopback port and waits until it answers PING. */
export async function startLocalRedis(timeoutMs = 10_000): Promise<LocalRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitForRedis(url, {
      timeoutMs,
      alive: () => {
        if (child.exitCode !== null)
          throw new Error(`redis-server exited with code ${child.exitCode}: ${stderr.trim()}`);
      },
    });
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3_000).unref();
      }),
  };
}
