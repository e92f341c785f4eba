/**
 * The baseline of the pipeline figures: a plain BullMQ worker making the same HTTP calls as
 * kie-batch's stages (create, status until done, download the image into a file), with no
 * ledger, no fleet and no stages. Plain JavaScript under plain node, so it pays no loader.
 *
 *   REDIS_URL=... BASELINE_PREFIX=... SIM_URL=... OUT_DIR=... CONCURRENCY=16 node bench/baseline-worker.mjs
 *
 * Prints "baseline worker started" once ready; stops on SIGTERM.
 */
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { request } from "undici";

const { REDIS_URL, BASELINE_PREFIX, SIM_URL, OUT_DIR } = process.env;
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const pollMs = Number(process.env.POLL_MS ?? 20);
const headers = { authorization: "Bearer baseline", "content-type": "application/json" };

async function call(method, path, body) {
  const response = await request(`${SIM_URL}${path}`, {
    method,
    headers,
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const answer = await response.body.json();
  if (answer.code !== 200) throw new Error(`${path}: ${answer.code} ${answer.msg}`);
  return answer.data;
}

const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const worker = new Worker(
  "baseline",
  async (job) => {
    const { taskId } = await call("POST", "/api/v1/qwen/generate", job.data);
    let record;
    for (;;) {
      record = await call("GET", `/api/v1/qwen/record-info?taskId=${encodeURIComponent(taskId)}`);
      if (record.successFlag === 1) break;
      if (record.successFlag >= 2) throw new Error(`task ${taskId} failed`);
      await sleep(pollMs);
    }
    const url = Array.isArray(record.imageUrl) ? record.imageUrl[0] : record.imageUrl;
    const image = await request(url);
    if (image.statusCode !== 200) throw new Error(`download: HTTP ${image.statusCode}`);
    await pipeline(image.body, createWriteStream(join(OUT_DIR, `${job.id.replaceAll("/", "_")}.png`)));
  },
  { connection, prefix: `{${BASELINE_PREFIX}}`, concurrency },
);
await worker.waitUntilReady();
process.stdout.write("baseline worker started\n");
process.on("SIGTERM", async () => {
  await worker.close();
  await connection.quit();
  process.exit(0);
});
