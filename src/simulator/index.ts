/**
 * A KIE look-alike on 127.0.0.1 for tests, benchmarks, `simulate` and `demo`: both API flavours,
 * auth, validation, the sliding rate window, credits, lagging records, failures, faults,
 * expiring files, download-url and signed callbacks.
 *
 * Time: the rate window runs on real time. Generation latency, record lag, file lifetime and
 * download-url lifetime are simulated durations: real ms = simulated ms / timeScale. Wire
 * timestamps are real epoch ms; `costTime` is simulated ms.
 */
import { resolveOptions } from "./options.js";
import { startServer } from "./server.js";
import type { SimulatorHandle, SimulatorOptions } from "./types.js";

export { parseSimulatorFlags, type SimulatorFlags } from "./cli-options.js";
export { canonicalJson, requestHash } from "./params.js";
export type * from "./types.js";

export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const resolved = resolveOptions(options);
  const running = await startServer(resolved);
  const { engine, port } = running;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats: () => engine.stats(),
    task: (taskId) => engine.task(taskId),
    tasks: () => engine.allTasks(),
    injectFaults: (endpoint, ...faults) => engine.faults.inject(endpoint, faults),
    setNextOutcome: (outcome) => engine.setNextOutcome(outcome),
    setMaintenance: (on) => {
      engine.maintenance = on;
    },
    setCredits: (credits) => engine.setCredits(credits),
    capKey: (key, capped) => engine.capKey(key, capped),
    expireFiles: (taskId) => engine.expireFiles(taskId),
    breakFiles: (taskId, status) => engine.breakFiles(taskId, status === null ? undefined : (status ?? 502)),
    expireUploads: () => engine.uploads.expireAll(),
    completeAll: () => engine.completeAll(),
    close: () => running.close(),
  };
}
