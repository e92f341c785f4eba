/**
 * Archiving to S3 (s3rver in-process): text of any script reaches the sidecar JSON and never the
 * object metadata (S3 takes ASCII only), and a 25 MB image arrives with the checksum of a
 * direct download (memory: worker-memory.test.ts and archive-memory.test.ts).
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { digestOf } from "../helpers/image-server.js";
import { s3rverContext } from "../helpers/s3rver-context.js";

const PROMPT = "一只在雪山上的红色狐狸，水墨风格";

const aws = s3rverContext();

function s3Env(): Record<string, string> {
  return {
    S3_BUCKET: aws.s3.bucket,
    S3_ENDPOINT: aws.s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    S3_PREFIX: "img/",
  };
}

async function objectText(key: string): Promise<string> {
  const object = await aws.client.send(new GetObjectCommand({ Bucket: aws.s3.bucket, Key: key }));
  return (await object.Body?.transformToString("utf8")) ?? "";
}

describe("worker: S3 archive", () => {
  const harnesses = harnessPerTest();

  it("Chinese prompt and metadata reach the sidecar intact; S3 metadata holds only ASCII", async () => {
    const h = await harnesses.start({ env: s3Env() });
    await h.worker();
    await h.pipeline.addRows("bzh", [
      { id: "fox", prompt: PROMPT, metadata: { 作者: "李白", 标签: "雪山" }, params: { seed: 42 } },
    ]);
    const summary = await h.pipeline.waitFinished("bzh", 15_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    const row = await h.pipeline.ledger.getRow("bzh", "fox");
    expect(row?.images?.[0]?.location).toBe(`s3://${aws.s3.bucket}/img/bzh/fox.png`);

    const sidecar = JSON.parse(await objectText("img/bzh/fox.json"));
    expect(sidecar).toMatchObject({
      prompt: PROMPT,
      metadata: { 作者: "李白", 标签: "雪山" },
      taskId: row?.taskId,
      sha256: row?.sha256,
    });

    const head = await aws.client.send(
      new HeadObjectCommand({ Bucket: aws.s3.bucket, Key: "img/bzh/fox.png" }),
    );
    expect(head.ContentType).toBe("image/png");
    expect(head.Metadata).toEqual({
      "task-id": row?.taskId,
      "prompt-sha256": createHash("sha256").update(PROMPT, "utf8").digest("hex"),
      batch: "bzh",
      "row-id": "fox",
      seed: "42",
    });
    for (const [key, value] of Object.entries(head.Metadata ?? {})) {
      expect(`${key}=${value}`).toMatch(/^[\x20-\x7e]+$/);
    }
  });

  it("a 25 MB image is archived with the sha256 of a direct download", async () => {
    const h = await harnesses.start({ sim: { imagePadBytes: 25 * 1_000_000 }, env: s3Env() });
    await h.worker();
    await h.pipeline.addRows("bbig", [{ id: "big" }]);
    const summary = await h.pipeline.waitFinished("bbig", 18_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    const row = await h.pipeline.ledger.getRow("bbig", "big");
    expect(row?.bytes).toBeGreaterThanOrEqual(25 * 1_000_000);

    const direct = await fetch(h.pipeline.sim.task(row!.taskId!)!.imageUrls[0]!);
    const expected = createHash("sha256")
      .update(Buffer.from(await direct.arrayBuffer()))
      .digest("hex");
    expect(row?.sha256).toBe(expected);
    const stored = await aws.client.send(
      new GetObjectCommand({ Bucket: aws.s3.bucket, Key: "img/bbig/big.png" }),
    );
    expect((await digestOf(stored.Body as Readable)).sha256).toBe(expected);
  });
});
