import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * A process holding the worker's metrics (default metrics on, as `kie-batch worker` has them),
 * idle for two seconds: how often its main thread woke (voluntary context switches, Linux's
 * /proc). prom-client's own event-loop sampling, every 10 ms, woke it about 200 times here.
 */
async function idleWakeups(seconds: number): Promise<{ wakeups: number; lagSampled: boolean }> {
  const module = fileURLToPath(new URL("../../src/metrics/registry.ts", import.meta.url));
  const script = `
    const { readFileSync } = await import("node:fs");
    const { createWorkerMetrics } = await import(${JSON.stringify(module)});
    const metrics = createWorkerMetrics();
    const switches = () => Number(/^voluntary_ctxt_switches:\\s+(\\d+)/m.exec(readFileSync("/proc/thread-self/status", "utf8"))[1]);
    // Settled first: start-up's own wakeups (module loading, the first GCs) are not counted.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = switches();
    await new Promise((resolve) => setTimeout(resolve, ${seconds * 1000}));
    const wakeups = switches() - before;
    const text = await metrics.registry.metrics();
    const lagSampled = /^nodejs_eventloop_lag_p99_seconds [0-9.e+-]+$/m.test(text) && !/^nodejs_eventloop_lag_p99_seconds 0$/m.test(text);
    console.log(JSON.stringify({ wakeups, lagSampled }));
    process.exit(0);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = await once(child, "exit");
  clearTimeout(timer);
  expect(code).toBe(0);
  return JSON.parse(out.trim()) as { wakeups: number; lagSampled: boolean };
}

describe("worker metrics at idle", () => {
  it("wake the process about ten times a second, not a hundred, and still sample the event loop's lag", async () => {
    const { wakeups, lagSampled } = await idleWakeups(2);
    // Every 100 ms: ~20 in two seconds (plus prom-client's and node's own few).
    expect(wakeups).toBeLessThan(60);
    expect(lagSampled).toBe(true);
  });
});
