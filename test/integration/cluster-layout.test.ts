/**
 * What moving to the cluster's key layout asks of an existing deployment, on the shared single
 * Redis: batches left in the old layout (`{prefix}:ledger:batch:<b>`) make a worker, `enqueue` and
 * every command refuse to start, naming them and what to do; a batch whose index entry was lost
 * is put back. And how REDIS_CLUSTER_NODES is read and named.
 */

import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { connectProducer, openOperator, RedisUnavailableError, startWorker } from "../../src/app/index.js";
import { describeEndpoint, redisEndpoint } from "../../src/app/redis-endpoint.js";
import { loadConfig } from "../../src/config/index.js";
import { parseClusterNodes } from "../../src/config/redis-nodes.js";
import { createLogger } from "../../src/core/logger.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { redisPrefixContext } from "../helpers/ledger-context.js";
import { ProcessSet } from "../helpers/processes.js";
import { REDIS_URL } from "../helpers/redis.js";

const db = redisPrefixContext("layout");

/** What an older kie-batch left: the batch index and a batch hash under the deployment's tag. */
async function oldLayoutBatch(batch: string): Promise<void> {
  await db.redis.zadd(`{${db.prefix}}:ledger:batches`, 1_000, batch);
  await db.redis.hset(
    `{${db.prefix}}:ledger:batch:${batch}`,
    "total",
    "3",
    "queued",
    "3",
    "createdAt",
    "1000",
  );
  await db.redis.hset(`{${db.prefix}}:ledger:row:${batch}/r1`, "status", "queued");
}

describe("an existing deployment's keys", () => {
  it("batches in the old key layout make commands, enqueue and workers refuse to start, naming them", async () => {
    await oldLayoutBatch("spring");
    // An old index entry whose batch expired long ago is no reason to refuse.
    await db.redis.zadd(`{${db.prefix}}:ledger:batches`, 500, "expired");
    const config = loadConfig({ REDIS_URL, KIE_QUEUE_PREFIX: db.prefix });
    const refused = (error: unknown) => {
      expect(error).toMatchObject({ name: "LedgerError", code: "old_layout" });
      const message = (error as Error).message;
      expect(message).toContain("1 batch(es)");
      expect(message).toContain("(spring)");
      expect(message).not.toContain("expired");
      expect(message).toContain(`DEL '{${db.prefix}}:ledger:batches'`);
      return true;
    };
    await expect(openOperator(config)).rejects.toSatisfy(refused);
    await expect(connectProducer(config)).rejects.toSatisfy(refused);
    const workerConfig = loadConfig({
      REDIS_URL,
      KIE_QUEUE_PREFIX: db.prefix,
      KIE_API_KEY: "layout-test-key",
      ARCHIVE_DIR: tmpdir(),
    });
    await expect(startWorker(workerConfig, createLogger({ level: "silent" }))).rejects.toSatisfy(refused);

    const procs = new ProcessSet();
    try {
      const status = await procs.run(["status"], {
        REDIS_URL,
        KIE_QUEUE_PREFIX: db.prefix,
        LOG_LEVEL: "silent",
      });
      expect(status.code, status.stderr).toBe(1);
      expect(status.stderr).toMatch(/^kie-batch: this Redis holds 1 batch\(es\) .* \(spring\)/);
      expect(status.stderr).not.toContain("unexpected error");
    } finally {
      await procs.killAll();
    }

    // Once the operator finished with them and removed the old index, everything starts.
    await db.redis.del(`{${db.prefix}}:ledger:batches`);
    const ops = await openOperator(config);
    await ops.close();
  });

  it("a batch whose index entry was lost is listed again after repairIndex, at its createdAt", async () => {
    const config = loadConfig({ REDIS_URL, KIE_QUEUE_PREFIX: db.prefix });
    const ops = await openOperator(config);
    try {
      await ops.ledger.addRows("kept", [
        { id: "r1", line: 2, prompt: "p", params: {}, metadata: {}, estimatedCredits: 1 },
      ]);
      await ops.ledger.addRows("lost", [
        { id: "r1", line: 2, prompt: "p", params: {}, metadata: {}, estimatedCredits: 1 },
      ]);
      const createdAt = (await ops.ledger.getBatch("lost"))?.createdAt;
      await db.redis.zrem(ledgerKeys(db.prefix).batches, "lost");
      expect((await ops.ledger.listBatches()).map((b) => b.batch)).toEqual(["kept"]);
      expect(await ops.ledger.repairIndex()).toEqual(["lost"]);
      expect((await ops.ledger.listBatches()).map((b) => b.batch).sort()).toEqual(["kept", "lost"]);
      expect(await db.redis.zscore(ledgerKeys(db.prefix).batches, "lost")).toBe(String(createdAt));
      expect(await ops.ledger.repairIndex()).toEqual([]);
    } finally {
      await ops.close();
    }
  });
});

describe("REDIS_CLUSTER_NODES", () => {
  it("takes host:port and URL seed nodes; credentials and TLS apply to every node, never shown", () => {
    expect(parseClusterNodes(" 10.0.0.1:7000, redis-2:7001 ,[::1]:7002")).toEqual({
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "redis-2", port: 7001 },
        { host: "::1", port: 7002 },
      ],
      tls: false,
    });
    expect(parseClusterNodes("rediss://app:s3cret@a:7000,b:7001")).toEqual({
      nodes: [
        { host: "a", port: 7000 },
        { host: "b", port: 7001 },
      ],
      username: "app",
      password: "s3cret",
      tls: true,
    });
    const config = loadConfig({ REDIS_CLUSTER_NODES: "redis://:s3cret@a:7000,b:7001" });
    expect(redisEndpoint(config)).toEqual({ kind: "cluster", nodes: "redis://:s3cret@a:7000,b:7001" });
    expect(describeEndpoint(redisEndpoint(config))).toBe("the Redis Cluster at a:7000,b:7001");
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "a:7000,b" })).toThrow(
      /REDIS_CLUSTER_NODES.*without a port/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "redis://:s3cret@a" })).toThrow(/without a port/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "redis://:s3cret@a" })).not.toThrow(/s3cret/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: " , " })).toThrow(/an empty list/);
  });

  it("a cluster that does not answer is a RedisUnavailableError naming the seed nodes, not the password", async () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: "127.0.0.1:1,127.0.0.1:2",
      REDIS_PASSWORD: "hunter2-secret",
      REDIS_CONNECT_TIMEOUT: "1s",
    });
    const error = await openOperator(config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    const message = (error as Error).message;
    expect(message).toContain("the Redis Cluster at 127.0.0.1:1,127.0.0.1:2");
    expect(message).toContain("REDIS_CLUSTER_NODES");
    expect(message).not.toContain("hunter2-secret");
  });
});
