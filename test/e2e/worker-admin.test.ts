/**
 * `kie-batch worker --admin-listen PORT` as an operator runs it: metrics and /healthz on the admin
 * port, on loopback; the webhook port (--listen) keeps /healthz and never serves /metrics.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorHandle } from "../../src/simulator/types.js";
import { type E2eDeployment, startDeployment } from "../helpers/e2e-deployment.js";
import { ProcessSet } from "../helpers/processes.js";

const procs = new ProcessSet();
let sim: SimulatorHandle | undefined;
let dep: E2eDeployment | undefined;

afterEach(async () => {
  await procs.killAll();
  await sim?.close();
  await dep?.close();
  sim = undefined;
  dep = undefined;
});

describe("worker admin port (spawned CLI)", () => {
  it("serves /metrics and /healthz on --admin-listen; the webhook port has /healthz only", async () => {
    dep = await startDeployment({ label: "admin", report: () => procs.report() });
    sim = await startSimulator({ apiKey: dep.apiKey });
    const env = { ...dep.env, KIE_BASE_URL: sim.url, ARCHIVE_DIR: dep.archiveDir, LOG_LEVEL: "info" };
    const worker = procs.start("worker", ["worker", "--admin-listen", "0", "--listen", "0"], env);
    const [line] = await worker.waitForOutput(/\{[^\n]*"msg":"worker started"[^\n]*\}/, { stream: "stderr" });
    const started = JSON.parse(line) as { adminPort: number; webhookPort: number };
    expect(started.adminPort).toBeGreaterThan(0);

    const metrics = await fetch(`http://127.0.0.1:${started.adminPort}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^kie_batch_in_flight_tasks 0$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect((await fetch(`http://127.0.0.1:${started.adminPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${started.webhookPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${started.webhookPort}/metrics`)).status).toBe(404);

    worker.kill("SIGTERM");
    expect(await worker.waitForExit(30_000)).toEqual({ code: 0, signal: null });
  });

  it("--admin-host without --admin-listen is a usage error", async () => {
    dep = await startDeployment({ label: "admin-usage" });
    const run = await procs.run(["worker", "--admin-host", "0.0.0.0"], {
      ...dep.env,
      ARCHIVE_DIR: dep.archiveDir,
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--admin-host: give --admin-listen too");
  });
});
