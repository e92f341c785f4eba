/**
 * A private `redis-server` for the bench: nothing else runs commands on it, so INFO's global
 * counters (total_commands_processed, used_memory) are the bench's own, and whatever the bench
 * leaves behind goes away with it. Started on a free port, no persistence, in a temp folder.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { Redis } from "ioredis";
import { freePort } from "./free-port.js";

export interface PrivateRedis {
  url: string;
  pid: number;
  close(): Promise<void>;
}

export async function startPrivateRedis(dir: string): Promise<PrivateRedis> {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  const failed = once(child, "error").then(([error]) => {
    throw error;
  });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {}); // refused until the server listens: the loop below retries
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await Promise.race([probe.connect().then(() => probe.ping()), failed]);
      break;
    } catch (error) {
      probe.disconnect();
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  probe.disconnect();
  return {
    url,
    pid: child.pid!,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}
