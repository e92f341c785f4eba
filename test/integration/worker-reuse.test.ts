/**
 * Reuse across batches, through the real worker assembly against the simulator: a second batch
 * sharing half its requests with the first (same prompts, same seeds) creates tasks only for the
 * new half, spends only their credits, and archives its shared rows as byte-identical copies of
 * the first batch's images (folder store: a file copy; S3: CopyObject on s3rver). Also: a batch
 * enqueued with --no-reuse, and a deployment with KIE_REUSE=off, create every row.
 */
import { createHash, randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { PassThrough } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { openOperator } from "../../src/app/index.js";
import { type NewRow, requestHash } from "../../src/ledger/index.js";
import { decodeEntry, encodeJsonEntry } from "../../src/ledger/result-entry.js";
import { resultIndexKeys } from "../../src/ledger/result-index.js";
import { writeResults } from "../../src/report/results.js";
import { readBatchStatus } from "../../src/report/status.js";
import { batchLines } from "../../src/report/status-text.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { keysWithPrefix } from "../helpers/redis.js";
import { startRefusingS3 } from "../helpers/refusing-s3.js";
import { s3rverContext } from "../helpers/s3rver-context.js";
import { until, type WorkerHarness } from "../helpers/worker-harness.js";

const aws = s3rverContext();

/** Four seeded requests; the second batch repeats the first two (one with a default spelled out). */
const FIRST: Partial<NewRow>[] = [
  { id: "fox", prompt: "a red fox in snow", params: { seed: 11 } },
  { id: "owl", prompt: "an owl at night", params: { seed: 12, guidance_scale: 4 } },
  { id: "elk", prompt: "an elk by a lake", params: { seed: 13 } },
  { id: "cat", prompt: "a cat on a roof", params: { seed: 14 } },
];
const SECOND: Partial<NewRow>[] = [
  // Same request as fox: the API's default size spelled out changes nothing.
  { id: "fox-again", prompt: "a red fox in snow", params: { image_size: "landscape_4_3", seed: 11 } },
  { id: "owl-again", prompt: "an owl at night", params: { guidance_scale: 4, seed: 12 } },
  { id: "bee", prompt: "a bee on a flower", params: { seed: 21 } },
  // Same prompt as elk with another seed: another request.
  { id: "elk-other-seed", prompt: "an elk by a lake", params: { seed: 99 } },
];

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/**
 * Waits until `count` result index entries exist: a row reads archived a moment before its entry
 * is written (recordResult, its own command after the move), and a row enqueued in between would
 * find nothing to reuse.
 */
async function indexed(h: WorkerHarness, count: number): Promise<void> {
  await until(`${count} result index entries`, async () => (await resultKeys(h)).length >= count);
}

/** Runs the first batch, then the second; returns what the second created and spent. */
async function runBoth(h: WorkerHarness, second = "b2", options: { reuse?: boolean } = {}) {
  await h.worker();
  await h.pipeline.addRows("b1", FIRST);
  expect(await h.pipeline.waitFinished("b1")).toMatchObject({ total: 4, archived: 4 });
  if (options.reuse !== false) await indexed(h, FIRST.length);
  const before = h.pipeline.sim.stats().createdTaskIds.length;
  await h.pipeline.addRows(second, SECOND);
  const summary = await h.pipeline.waitFinished(second);
  const stats = h.pipeline.sim.stats();
  const created = stats.createdTaskIds.slice(before);
  const credits = created.reduce((sum, taskId) => sum + (stats.creditsByTask[taskId] ?? 0), 0);
  return { summary, created, credits };
}

async function resultKeys(h: WorkerHarness): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await h.pipeline.redis.scan(
      cursor,
      "MATCH",
      `{${h.pipeline.prefix}:reuse:results:?}:*`,
    );
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found;
}

describe("worker: reuse across batches", () => {
  const harnesses = harnessPerTest();

  async function start(env: Record<string, string> = {}) {
    const h = await harnesses.start({ env });
    // The result index lives under its own hash tag: removed here, with the test's deployment.
    const close = h.close.bind(h);
    h.close = async () => {
      const keys = await resultKeys(h);
      if (keys.length > 0) await h.pipeline.redis.del(...keys);
      await close();
    };
    return h;
  }

  it("folder store: the second batch creates only its new half, and its shared rows are byte-identical copies", async () => {
    const h = await start();
    const { summary, created, credits } = await runBoth(h);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0, reused: 2 });
    const rows = Object.fromEntries(
      await Promise.all(
        SECOND.map(async (r) => [r.id, await h.pipeline.ledger.getRow("b2", r.id!)] as const),
      ),
    );
    // Tasks only for the new half, and the batch spent exactly their credits.
    expect(created.sort()).toEqual([rows.bee?.taskId, rows["elk-other-seed"]?.taskId].sort());
    expect(summary.creditsSpent).toBe(credits);
    expect(summary.creditsReserved).toBe(0);
    // The counters and state indexes hold: every row counted once, none left in an indexed state.
    expect(summary.queued + summary.submitted + summary.generating + summary.archiving).toBe(0);
    for (const state of ["queued", "submitted", "generating", "archiving"] as const) {
      for await (const page of h.pipeline.ledger.statePages("b2", state)) expect(page).toEqual([]);
    }
    for (const [id, from] of [
      ["fox-again", "fox"],
      ["owl-again", "owl"],
    ] as const) {
      const row = rows[id]!;
      const source = await h.pipeline.ledger.getRow("b1", from);
      expect(row).toMatchObject({
        status: "archived",
        reusedFrom: `b1/${from}`,
        creditsSpent: 0,
        taskIds: [],
      });
      const copy = await readFile(row.location!);
      expect(row.location).toBe(`${h.pipeline.archiveDir}/b2/${id}.png`);
      expect(sha256(copy)).toBe(source?.sha256);
      expect(sha256(copy)).toBe(sha256(await readFile(source!.location!)));
      const sidecar = JSON.parse(await readFile(`${h.pipeline.archiveDir}/b2/${id}.json`, "utf8"));
      expect(sidecar).toMatchObject({
        credits: 0,
        taskId: source?.taskId,
        reusedFrom: { batch: "b1", rowId: from },
      });
    }
    // One entry per distinct seeded request archived (fox/owl renewed by their copies).
    expect(await resultKeys(h)).toHaveLength(6);

    // `status` counts them; `results` names the row each came from.
    const status = await readBatchStatus(
      {
        ledger: h.pipeline.ledger,
        fleet: async () => ({ paused: null, archivePaused: null, accounts: [] }),
        clock: { now: () => Date.now() },
      },
      "b2",
    );
    expect(status).toMatchObject({ archived: 4, reused: 2 });
    expect(batchLines(status).join("\n")).toContain("reused: 2 of the archived rows are copies");
    const out = new PassThrough();
    const text: Buffer[] = [];
    out.on("data", (chunk: Buffer) => text.push(chunk));
    await writeResults({ ledger: h.pipeline.ledger }, "b2", "jsonl", out);
    const records = Buffer.concat(text)
      .toString("utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(records.map((r) => [r.id, r.status, r.reusedFrom, r.credits])).toEqual([
      ["fox-again", "archived", "b1/fox", 0],
      ["owl-again", "archived", "b1/owl", 0],
      ["bee", "archived", null, rows.bee?.creditsSpent],
      ["elk-other-seed", "archived", null, rows["elk-other-seed"]?.creditsSpent],
    ]);
  });

  it("S3 (s3rver): shared rows are copied with CopyObject, byte-identical, and only the new half is created", async () => {
    const h = await start({
      S3_BUCKET: aws.s3.bucket,
      S3_ENDPOINT: aws.s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      S3_PREFIX: `reuse-${randomUUID().slice(0, 8)}/`,
    });
    const { summary, created, credits } = await runBoth(h);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0, reused: 2 });
    expect(created).toHaveLength(2);
    expect(summary.creditsSpent).toBe(credits);
    const prefix = h.config().S3_PREFIX;
    for (const [id, from] of [
      ["fox-again", "fox"],
      ["owl-again", "owl"],
    ] as const) {
      const row = await h.pipeline.ledger.getRow("b2", id);
      expect(row).toMatchObject({ status: "archived", reusedFrom: `b1/${from}` });
      expect(row?.location).toBe(`s3://${aws.s3.bucket}/${prefix}b2/${id}.png`);
      const object = await aws.client.send(
        new GetObjectCommand({ Bucket: aws.s3.bucket, Key: `${prefix}b2/${id}.png` }),
      );
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      const source = await h.pipeline.ledger.getRow("b1", from);
      expect(sha256(bytes)).toBe(source?.sha256);
      // The copy carries its own metadata (REPLACE), naming the row it came from.
      expect(object.Metadata).toMatchObject({ "row-id": id, batch: "b2", "reused-from": `b1/${from}` });
    }
  });

  /**
   * A worker archiving to s3rver through a proxy that can refuse (probing the store every 300 ms),
   * the first batch archived; `before`: the creates so far.
   */
  async function firstBatchBehindProxy() {
    const proxy = await startRefusingS3(aws.s3.endpoint);
    try {
      const h = await start({
        S3_BUCKET: aws.s3.bucket,
        S3_ENDPOINT: proxy.endpoint,
        S3_FORCE_PATH_STYLE: "true",
        S3_PREFIX: `reuse-${randomUUID().slice(0, 8)}/`,
      });
      await h.worker({ settings: { storeProbeMs: 300 } });
      await h.pipeline.addRows("b1", FIRST);
      expect(await h.pipeline.waitFinished("b1")).toMatchObject({ total: 4, archived: 4 });
      await indexed(h, FIRST.length);
      return { h, proxy, before: h.pipeline.sim.stats().createdTaskIds.length };
    } catch (error) {
      await proxy.close();
      throw error;
    }
  }

  it("a store that is full (MinIO's 507) when the second batch runs: its shared rows wait, paying nothing, and are copied once it accepts", async () => {
    const { h, proxy, before } = await firstBatchBehindProxy();
    try {
      // Writes (and CopyObject, a PUT) refused; reads go on.
      proxy.refuse("XMinioStorageFull", ["PUT", "POST"]);
      await h.pipeline.addRows("b2", SECOND);
      // The new half is created and waits in archiving; the shared half waits queued, several probes long.
      await until("the new half waits in archiving", async () => {
        const summary = await h.pipeline.ledger.getBatch("b2");
        return summary?.archiving === 2;
      });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(h.pipeline.sim.stats().createdTaskIds.length - before).toBe(2);
      expect(await h.pipeline.ledger.getBatch("b2")).toMatchObject({ queued: 2, archiving: 2, failed: 0 });
      proxy.refuse(null);
      const summary = await h.pipeline.waitFinished("b2", 20_000);
      expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0, reused: 2 });
      expect(h.pipeline.sim.stats().createdTaskIds.length - before).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it("a store that refuses only reused rows' copies (no archive job running): archiving pauses, and their own probe lifts it", async () => {
    const { h, proxy, before } = await firstBatchBehindProxy();
    try {
      proxy.refuse("AccessDenied", ["PUT", "POST"]);
      // Only rows that reuse: no create, so no archive job ever meets the refusal.
      await h.pipeline.addRows("b2", SECOND.slice(0, 2));
      const op = await openOperator(h.config());
      try {
        const paused = await until(
          "archiving paused",
          async () => (await op.fleetState()).archivePaused ?? false,
        );
        expect(paused).toMatchObject({
          kind: "store-unavailable",
          reason: expect.stringMatching(/AccessDenied/),
        });
        expect(await h.pipeline.ledger.getBatch("b2")).toMatchObject({ queued: 2, failed: 0 });
        proxy.refuse(null);
        const summary = await h.pipeline.waitFinished("b2", 20_000);
        expect(summary).toMatchObject({ total: 2, archived: 2, reused: 2, failed: 0 });
        expect((await op.fleetState()).archivePaused).toBeNull();
      } finally {
        await op.close();
      }
      expect(h.pipeline.sim.stats().createdTaskIds.length - before).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it("an archived image changed since it was indexed is not reused: the row is created as usual", async () => {
    const h = await start();
    await h.worker();
    await h.pipeline.addRows("b1", FIRST.slice(0, 1));
    await h.pipeline.waitFinished("b1");
    await indexed(h, 1);
    const fox = await h.pipeline.ledger.getRow("b1", "fox");
    // Same size, same metadata file beside it, other bytes (someone edited the archive).
    const tampered = await readFile(fox!.location!);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 0xff, tampered.length - 1);
    await writeFile(fox!.location!, tampered);
    const before = h.pipeline.sim.stats().createdTaskIds.length;
    await h.pipeline.addRows("b2", SECOND.slice(0, 1));
    const summary = await h.pipeline.waitFinished("b2");
    expect(summary).toMatchObject({ archived: 1, failed: 0 });
    expect(summary.reused ?? 0).toBe(0);
    expect(h.pipeline.sim.stats().createdTaskIds.length - before).toBe(1);
    const row = await h.pipeline.ledger.getRow("b2", "fox-again");
    expect(row?.reusedFrom).toBeUndefined();
    expect(sha256(await readFile(row!.location!))).toBe(row?.sha256);
  });

  it("an entry the previous version wrote (request hash in hex, a JSON value) is still reused", async () => {
    const h = await start();
    await h.worker();
    const [fox] = FIRST;
    await h.pipeline.addRows("b1", [fox!]);
    await h.pipeline.waitFinished("b1");
    await indexed(h, 1);
    // The entry as the previous version wrote it, in place of this version's.
    const hash = requestHash(fox!.prompt!, fox!.params as Record<string, unknown>)!;
    const [key, jsonKey] = resultIndexKeys(h.pipeline.prefix, hash, h.config().KIE_API_FLAVOR);
    expect(await resultKeys(h)).toEqual([key]);
    const entry = decodeEntry((await h.pipeline.redis.get(key!))!)!;
    await h.pipeline.redis.del(key!);
    await h.pipeline.redis.set(jsonKey!, encodeJsonEntry(entry), "PX", 60_000);

    const before = h.pipeline.sim.stats().createdTaskIds.length;
    await h.pipeline.addRows("b2", SECOND.slice(0, 1));
    const summary = await h.pipeline.waitFinished("b2");
    expect(summary).toMatchObject({ archived: 1, failed: 0, reused: 1 });
    expect(h.pipeline.sim.stats().createdTaskIds.length - before).toBe(0);
    const row = await h.pipeline.ledger.getRow("b2", "fox-again");
    expect(row).toMatchObject({ status: "archived", reusedFrom: "b1/fox", creditsSpent: 0 });
    expect(sha256(await readFile(row!.location!))).toBe(entry.images[0]?.sha256);
    // The reuse renewed the request's entry in this version's form.
    expect((await resultKeys(h)).sort()).toEqual([key, jsonKey].sort());
  });

  it("two rows of one request in flight at once are both created (neither is archived yet): documented", async () => {
    const h = await start();
    await h.worker();
    const twin = { prompt: "a heron at dawn", params: { seed: 5 } };
    await h.pipeline.addRows("twins", [
      { id: "first", ...twin },
      { id: "second", ...twin },
    ]);
    const summary = await h.pipeline.waitFinished("twins");
    expect(summary).toMatchObject({ total: 2, archived: 2, failed: 0 });
    expect(summary.reused ?? 0).toBe(0);
    expect(h.pipeline.sim.stats().createdTaskIds).toHaveLength(2);
    // The later archive renews the one entry of the request.
    expect(await resultKeys(h)).toHaveLength(1);
  });

  it("a batch enqueued with --no-reuse creates every row", async () => {
    const h = await start();
    await h.worker();
    await h.pipeline.addRows("b1", FIRST.slice(0, 2));
    await h.pipeline.waitFinished("b1");
    const before = h.pipeline.sim.stats().createdTaskIds.length;
    const rows = SECOND.slice(0, 2).map((row, i) => ({
      id: row.id!,
      line: i + 2,
      prompt: row.prompt!,
      params: row.params!,
      metadata: {},
      estimatedCredits: 8,
    }));
    await h.pipeline.ledger.addRows("fresh", rows, { noReuse: true });
    for (const row of rows) await h.pipeline.queues.addSubmit({ batch: "fresh", rowId: row.id, resubmit: 0 });
    const summary = await h.pipeline.waitFinished("fresh");
    expect(summary).toMatchObject({ archived: 2, noReuse: true });
    expect(summary.reused ?? 0).toBe(0);
    expect(h.pipeline.sim.stats().createdTaskIds.length - before).toBe(2);
  });

  it("KIE_REUSE=off: every row is created and nothing is indexed", async () => {
    const h = await start({ KIE_REUSE: "off" });
    const { summary, created } = await runBoth(h, "b2", { reuse: false });
    expect(summary.reused ?? 0).toBe(0);
    expect(created).toHaveLength(4);
    expect(await resultKeys(h)).toEqual([]);
    expect((await keysWithPrefix(h.pipeline.redis, h.pipeline.prefix)).some((k) => k.includes("reuse"))).toBe(
      false,
    );
  });
});
