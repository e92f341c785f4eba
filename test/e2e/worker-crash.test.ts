/**
 * Workers that die (SIGKILL) or are told to stop (SIGTERM) mid-run, as spawned processes: no row
 * is lost, none is paid for again once its taskId is recorded, and a stop never hangs.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { BatchSummary } from "../../src/ledger/index.js";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorHandle } from "../../src/simulator/types.js";
import {
  type E2eDeployment,
  expectArchivedOnce,
  expectFolderArchive,
  startDeployment,
} from "../helpers/e2e-deployment.js";
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

/** Rows with a recorded taskId (submitted or further along). */
async function withTask(d: E2eDeployment, batch: string): Promise<number> {
  return (await d.rows(batch)).filter((r) => r.taskIds.length > 0).length;
}

describe("workers killed or stopped mid-run (spawned CLI)", () => {
  it("SIGKILL twice mid-run: every row archived, none created again after its taskId was recorded", {
    timeout: 60_000,
  }, async () => {
    dep = await startDeployment({ label: "kill", report: () => procs.report() });
    const d = dep;
    sim = await startSimulator({
      apiKey: d.apiKey,
      latency: { minMs: 1_000, maxMs: 3_000 },
      recordLagMs: 300,
      rateLimit: { limit: 5, windowMs: 2_000 },
    });
    // 5 creates per 2 s spread the 30 submits over ~13 s, so each kill finds rows at every stage.
    const env = { ...d.env, KIE_BASE_URL: sim.url, ARCHIVE_DIR: d.archiveDir, KIE_RATE_LIMIT: "5/2s" };
    const manifest = await d.writeManifest("kill", 30);
    expect((await procs.run(["enqueue", manifest, "--batch", "kill"], env)).code).toBe(0);

    const a = procs.start("worker-a", ["worker"], env);
    const b = procs.start("worker-b", ["worker"], env);
    await d.waitFor("6 rows submitted", async () => (await withTask(d, "kill")) >= 6, 20_000);
    await a.stop();
    const inFlightAtFirstKill = (await d.ledger.getBatch("kill"))!;
    procs.start("worker-a2", ["worker"], env);

    await d.waitFor("16 rows submitted", async () => (await withTask(d, "kill")) >= 16, 30_000);
    await b.stop();
    const inFlightAtSecondKill = (await d.ledger.getBatch("kill"))!;
    procs.start("worker-b2", ["worker"], env);

    // Both kills hit a batch in motion: rows queued, and rows between submit and archive.
    for (const at of [inFlightAtFirstKill, inFlightAtSecondKill]) {
      expect(at.queued, JSON.stringify(at)).toBeGreaterThan(0);
      expect(at.submitted + at.generating + at.archiving, JSON.stringify(at)).toBeGreaterThan(0);
    }

    await d.waitFinished("kill", 45_000);
    const rows = await d.rows("kill");
    // A create on the wire when its worker died may have made a task nobody recorded: the next
    // run of that job counts the row uncertain. Any other second create fails the check.
    const unrecorded = expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, 30);
    const uncertain = rows.reduce((sum, r) => sum + r.uncertain, 0);
    // A kill inside a file write leaves its temporary files (two kills, four archive slots each,
    // an image or sidecar and its metadata a slot).
    await expectFolderArchive(d.archiveDir, "kill", rows, { killedWrites: 16 });
    expect(procs.errorLogs()).toEqual([]);
    const counts = ({ queued, submitted, generating, archiving, archived }: BatchSummary) =>
      JSON.stringify({ queued, submitted, generating, archiving, archived });
    console.log(
      `SIGKILL x2: creates ${sim.stats().creates} for 30 rows (${unrecorded} on the wire at a kill, ` +
        `${uncertain} rows counted uncertain); ` +
        `at the kills ${counts(inFlightAtFirstKill)} and ${counts(inFlightAtSecondKill)}`,
    );
  });

  it("SIGKILL with a create on the wire: the row may be paid twice, and status and results say so", {
    timeout: 60_000,
  }, async () => {
    dep = await startDeployment({ label: "kill-wire", report: () => procs.report() });
    const d = dep;
    sim = await startSimulator({ apiKey: d.apiKey, latency: { minMs: 200, maxMs: 500 }, recordLagMs: 100 });
    const env = { ...d.env, KIE_BASE_URL: sim.url, ARCHIVE_DIR: d.archiveDir };
    const manifest = await d.writeManifest("wire", 3);
    expect((await procs.run(["enqueue", manifest, "--batch", "wire"], env)).code).toBe(0);
    // The first create is answered 3 s late; the simulator makes the task after the delay, whether
    // or not anyone still waits for the answer.
    sim.injectFaults("submit", { kind: "delay", ms: 3_000 });

    const first = procs.start("worker-1", ["worker", "--concurrency-submit", "1"], env);
    await d.waitFor("a create on the wire", async () => sim!.stats().faults.delay === 1, 20_000);
    await first.stop();
    await d.waitFor("the orphan task to be created", async () => sim!.stats().creates === 1, 10_000);

    procs.start("worker-2", ["worker"], env);
    await d.waitFinished("wire", 30_000);
    const rows = await d.rows("wire");
    expect(sim.stats().creates).toBe(4);
    expect(rows.map((r) => r.uncertain).sort()).toEqual([0, 0, 1]);
    expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, 3);

    const status = await procs.run(["status", "wire", "--json"], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ archived: 3, uncertain: 1 });
    const results = (await procs.run(["results", "wire"], env)).stdout.trim().split("\n");
    expect(results.map((line) => JSON.parse(line).uncertain)).toEqual(rows.map((r) => r.uncertain));
  });

  it("SIGTERM with status calls hanging: exit 0 within 30 s, and another worker finishes the batch", {
    timeout: 60_000,
  }, async () => {
    dep = await startDeployment({ label: "term", report: () => procs.report() });
    const d = dep;
    sim = await startSimulator({
      apiKey: d.apiKey,
      latency: { minMs: 200, maxMs: 500 },
      recordLagMs: 100,
      rateLimit: { limit: 100, windowMs: 2_000 },
    });
    const env = { ...d.env, KIE_BASE_URL: sim.url, ARCHIVE_DIR: d.archiveDir, KIE_RATE_LIMIT: "100/2s" };
    const manifest = await d.writeManifest("term", 6);
    expect((await procs.run(["enqueue", manifest, "--batch", "term"], env)).code).toBe(0);
    // Every status call of the first worker hangs: the server never answers.
    sim.injectFaults("status", ...Array.from({ length: 6 }, () => ({ kind: "hang" as const })));

    const first = procs.start("worker-1", ["worker"], env);
    await d.waitFor("6 status calls hanging", async () => sim!.stats().faults.hang === 6, 20_000);
    const signalled = Date.now();
    first.kill("SIGTERM");
    const exit = await first.waitForExit(35_000);
    const elapsed = Date.now() - signalled;
    expect(exit, first.tail()).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(30_000);
    expect(first.stderr).not.toMatch(/shutdown deadline passed/);

    // The released jobs are the next worker's: nothing lost, nothing submitted again.
    procs.start("worker-2", ["worker"], env);
    await d.waitFinished("term", 30_000);
    const rows = await d.rows("term");
    expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, 6);
    await expectFolderArchive(d.archiveDir, "term", rows);
    expect(procs.errorLogs()).toEqual([]);
    console.log(`SIGTERM with 6 hung status calls: exited 0 after ${elapsed} ms`);
  });

  it("SIGTERM with a create hanging on the wire: exit 0 within 30 s, the row counted uncertain and finished", {
    timeout: 60_000,
  }, async () => {
    dep = await startDeployment({ label: "term-submit", report: () => procs.report() });
    const d = dep;
    sim = await startSimulator({
      apiKey: d.apiKey,
      latency: { minMs: 200, maxMs: 500 },
      recordLagMs: 100,
      rateLimit: { limit: 100, windowMs: 2_000 },
    });
    const env = { ...d.env, KIE_BASE_URL: sim.url, ARCHIVE_DIR: d.archiveDir, KIE_RATE_LIMIT: "100/2s" };
    const manifest = await d.writeManifest("term-submit", 3);
    expect((await procs.run(["enqueue", manifest, "--batch", "term-submit"], env)).code).toBe(0);
    sim.injectFaults("submit", { kind: "hang" });

    const first = procs.start("worker-1", ["worker", "--concurrency-submit", "1"], env);
    // One create hangs; the others wait behind it (one submit slot).
    await d.waitFor("the first create to hang", async () => sim!.stats().faults.hang === 1, 20_000);
    const signalled = Date.now();
    first.kill("SIGTERM");
    const exit = await first.waitForExit(35_000);
    const elapsed = Date.now() - signalled;
    expect(exit, first.tail()).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(30_000);

    procs.start("worker-2", ["worker"], env);
    await d.waitFinished("term-submit", 30_000);
    const rows = await d.rows("term-submit");
    // The hung create made nothing (the simulator hangs before creating), yet the worker could not
    // know: the row is counted uncertain, as status and results show.
    expect(rows.reduce((sum, r) => sum + r.uncertain, 0)).toBe(1);
    expectArchivedOnce(rows, { stats: sim.stats(), tasks: sim.tasks() }, 3);
    await expectFolderArchive(d.archiveDir, "term-submit", rows);
    console.log(`SIGTERM with a hung create: exited 0 after ${elapsed} ms`);
  });
});
