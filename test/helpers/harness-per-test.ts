import { afterEach } from "vitest";
import { startHarness, type WorkerHarness } from "./worker-harness.js";

/** Call inside a describe: `start` a harness in a test, and it is closed after that test. */
export function harnessPerTest(): { start: typeof startHarness } {
  const started: WorkerHarness[] = [];
  afterEach(async () => {
    for (const h of started.splice(0)) await h.close();
  });
  return {
    async start(options) {
      const h = await startHarness(options);
      started.push(h);
      return h;
    },
  };
}
