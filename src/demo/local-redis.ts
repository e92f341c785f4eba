import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { waitForRedis } from "../app/connections.js";

/** A throwaway redis-server of the demo's own: loopback only, nothing kept on disk. Its probe is the app's. */
export interface LocalRedis {
  url: string;
  stop(): Promise<void>;
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
