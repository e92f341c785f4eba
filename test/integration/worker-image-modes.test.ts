/**
 * Issue 13's done-when: a mixed manifest (text-to-image, image-to-image from a URL, edit from a
 * local file) enqueued by the real producer and run by the real worker assembly against the
 * simulator: every output archived, the local image uploaded once, the estimate and the budget
 * at per-model prices, results and sidecars naming the model and the source image.
 */
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { connectProducer } from "../../src/app/index.js";
import { systemClock } from "../../src/core/clock.js";
import { enqueue } from "../../src/producer/index.js";
import { writeResults } from "../../src/report/results.js";
import { wakeParkedRows } from "../../src/worker/budget-wake.js";
import { startImageServer } from "../helpers/image-server.js";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

const EXAMPLES = join(import.meta.dirname, "..", "..", "examples", "images");
const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

let harness: WorkerHarness | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await harness?.close();
  harness = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("image-to-image and edit in one batch", () => {
  it("a mixed manifest runs end to end at per-model prices, each output archived and named by its source", async () => {
    const sneaker = await readFile(join(EXAMPLES, "sneaker.png"));
    const mug = await readFile(join(EXAMPLES, "mug.png"));
    const images = await startImageServer({ "/sneaker.png": { body: sneaker } });
    cleanups.push(() => images.close());
    const dir = await mkdtemp(join(tmpdir(), "kie-modes-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await copyFile(join(EXAMPLES, "mug.png"), join(dir, "mug.png"));
    const manifest = join(dir, "modes.csv");
    // A presigned URL, as a bucket hands out: its signature and credential are secrets.
    const presigned = `${images.url("/sneaker.png")}?X-Amz-Credential=CREDSECRET&X-Amz-Signature=SIGSECRET`;
    const masked = `${images.url("/sneaker.png")}?X-Amz-Credential=***&X-Amz-Signature=***`;
    await writeFile(
      manifest,
      [
        "id,model,prompt,image_url,image_path,strength",
        "cover,,a red mug on linen,,,",
        `sketch,image-to-image,the sneaker as a watercolour,${presigned},,0.6`,
        "studio,edit,the mug on a white studio background,,mug.png,",
        "studio-again,edit,the mug on a grey studio background,,./mug.png,",
      ].join("\n"),
    );

    harness = await startHarness({ sim: { timeScale: 20 } });
    const env = { KIE_API_FLAVOR: "jobs", KIE_UPLOAD_BASE_URL: harness.pipeline.sim.url };
    const config = harness.config(env);
    const { sim, ledger } = harness.pipeline;
    // Per-model prices, no acceleration given: each model's dearest (8, 10, 12, 12) = 42. A budget
    // of 41 cannot hold every row, which at text-to-image's price (32) it would.
    const summary = await enqueue(
      { file: manifest, batch: "modes", budget: 41, apiFlavor: "jobs" },
      { connect: (o) => connectProducer(config, o), out: new PassThrough().resume(), clock: systemClock },
    );
    expect(summary).toMatchObject({ enqueued: 4, invalidRows: 0, estimatedCredits: 42 });

    await harness.worker({ env });
    const parked = await until("three rows archived and one parked over the budget", async () => {
      const batch = await ledger.getBatch("modes");
      return batch && batch.archived === 3 && batch.waitingBudget === 1 ? batch : undefined;
    });
    expect(parked.creditsSpent).toBeLessThanOrEqual(41);

    await ledger.setBudget("modes", 42);
    await wakeParkedRows({ ledger, queues: harness.pipeline.queues }, "modes");
    const done = await harness.pipeline.waitFinished("modes");
    expect(done).toMatchObject({ total: 4, archived: 4, failed: 0, creditsSpent: 42 });

    // One upload for the two rows of the same file; each create got its own input.
    const stats = sim.stats();
    expect(stats.uploads).toBe(1);
    expect(stats.creates).toBe(4);
    const tasks = sim.tasks();
    const byModel = (model: string | undefined) => tasks.filter((task) => task.params.model === model);
    expect(byModel(undefined)).toHaveLength(1);
    expect(byModel("image-to-image").map((task) => task.inputSha256)).toEqual([sha(sneaker)]);
    expect(byModel("edit").map((task) => task.inputSha256)).toEqual([sha(mug), sha(mug)]);

    // Archived outputs, and sidecars naming the model and the source image.
    const archive = join(harness.pipeline.archiveDir, "modes");
    const studio = await ledger.getRow("modes", "studio");
    const output = await readFile(join(archive, "studio.png"));
    expect(studio?.sha256).toBe(sha(output));
    const sidecar = (id: string) => readFile(join(archive, `${id}.json`), "utf8").then(JSON.parse);
    expect(await sidecar("studio")).toMatchObject({
      model: "edit",
      sourceImage: { path: join(dir, "mug.png"), sha256: sha(mug) },
    });
    expect(await sidecar("sketch")).toMatchObject({
      model: "image-to-image",
      sourceImage: { url: masked },
      params: { image_url: masked },
    });
    expect(await readFile(join(archive, "sketch.json"), "utf8")).not.toMatch(/SIGSECRET|CREDSECRET/);
    expect(await sidecar("cover")).toMatchObject({ model: "text-to-image" });
    expect((await sidecar("cover")).sourceImage).toBeUndefined();

    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (chunk: Buffer) => chunks.push(chunk));
    await writeResults({ ledger }, "modes", "jsonl", out);
    expect(Buffer.concat(chunks).toString("utf8")).not.toMatch(/SIGSECRET|CREDSECRET/);
    // KIE was given the URL whole: the row keeps it.
    expect((await ledger.getRow("modes", "sketch"))?.params.image_url).toBe(presigned);
    const results = Buffer.concat(chunks)
      .toString("utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(results.map((r) => [r.id, r.model, r.sourceImage, r.sourceSha256, r.creditsEstimated])).toEqual([
      ["cover", "text-to-image", null, null, 8],
      ["sketch", "image-to-image", masked, null, 10],
      ["studio", "edit", join(dir, "mug.png"), sha(mug), 12],
      ["studio-again", "edit", join(dir, "mug.png"), sha(mug), 12],
    ]);
  });

  it("without creditsConsumed in the status answer, an edit row is settled at its model's price, not text-to-image's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kie-modes-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await copyFile(join(EXAMPLES, "mug.png"), join(dir, "mug.png"));
    const manifest = join(dir, "edit.csv");
    await writeFile(manifest, "id,model,prompt,image_path\nstudio,edit,the mug on white,mug.png\n");
    harness = await startHarness({ sim: { timeScale: 20, reportCreditsConsumed: false } });
    const env = { KIE_API_FLAVOR: "jobs", KIE_UPLOAD_BASE_URL: harness.pipeline.sim.url };
    const config = harness.config(env);
    await enqueue(
      { file: manifest, batch: "price", apiFlavor: "jobs" },
      { connect: (o) => connectProducer(config, o), out: new PassThrough().resume(), clock: systemClock },
    );
    await harness.worker({ env });
    const done = await harness.pipeline.waitFinished("price");
    expect(done).toMatchObject({ archived: 1, creditsSpent: 12 });
    expect(harness.pipeline.sim.stats().creditsCharged).toBe(12);
  });

  it("an upload that fails on the wire is retried and the row still archives, created once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kie-modes-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await copyFile(join(EXAMPLES, "mug.png"), join(dir, "mug.png"));
    const manifest = join(dir, "edit.csv");
    await writeFile(manifest, "id,model,prompt,image_path\nstudio,edit,the mug on white,mug.png\n");
    harness = await startHarness({ sim: { timeScale: 20 } });
    const { sim } = harness.pipeline;
    sim.injectFaults("upload", { kind: "http", status: 503 });
    const env = { KIE_API_FLAVOR: "jobs", KIE_UPLOAD_BASE_URL: sim.url };
    const config = harness.config(env);
    await enqueue(
      { file: manifest, batch: "retry", apiFlavor: "jobs" },
      { connect: (o) => connectProducer(config, o), out: new PassThrough().resume(), clock: systemClock },
    );
    await harness.worker({ env });
    const done = await harness.pipeline.waitFinished("retry");
    expect(done).toMatchObject({ archived: 1, failed: 0, uncertain: 0, creditsSpent: 12 });
    expect(sim.stats()).toMatchObject({ uploads: 1, creates: 1, faults: { http: 1 } });
  });

  it("an upload KIE expired early is forgotten on the refused create and made again: the row archives", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kie-modes-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await copyFile(join(EXAMPLES, "mug.png"), join(dir, "mug.png"));
    const first = join(dir, "first.csv");
    const second = join(dir, "second.csv");
    await writeFile(first, "id,model,prompt,image_path\nwhite,edit,the mug on white,mug.png\n");
    await writeFile(second, "id,model,prompt,image_path\ngrey,edit,the mug on grey,mug.png\n");
    harness = await startHarness({ sim: { timeScale: 20 } });
    const { sim, ledger } = harness.pipeline;
    const env = { KIE_API_FLAVOR: "jobs", KIE_UPLOAD_BASE_URL: sim.url };
    const config = harness.config(env);
    const run = (file: string, batch: string) =>
      enqueue(
        { file, batch, apiFlavor: "jobs" },
        { connect: (o) => connectProducer(config, o), out: new PassThrough().resume(), clock: systemClock },
      );
    await harness.worker({ env });
    await run(first, "first");
    expect(await harness.pipeline.waitFinished("first")).toMatchObject({ archived: 1 });
    expect(sim.stats()).toMatchObject({ uploads: 1, creates: 1 });

    // The worker's record (and the fleet's) still says the upload is good for hours; KIE dropped it.
    sim.expireUploads();
    await run(second, "second");
    const done = await harness.pipeline.waitFinished("second");
    expect(done).toMatchObject({ archived: 1, failed: 0, uncertain: 0, creditsSpent: 12 });
    expect(sim.stats()).toMatchObject({ uploads: 2, creates: 2, creditsCharged: 24 });
    expect(sim.tasks().map((task) => task.inputSha256)).toEqual([
      sha(await readFile(join(dir, "mug.png"))),
      sha(await readFile(join(dir, "mug.png"))),
    ]);
    expect((await ledger.getRow("second", "grey"))?.taskIds).toHaveLength(1);
  });
});
