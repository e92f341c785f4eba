import type { Cluster } from "ioredis";
import type { RedisClient } from "./script.js";

/** True for an ioredis `Cluster` client (REDIS_CLUSTER_NODES), false for a single Redis. */
function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

/**
 * Visits every key matching `pattern`, a page at a time. A Cluster's SCAN (like KEYS) sees the
 * keys of the one node it is sent to, so each master is walked in turn; a key may be seen twice,
 * never missed while its node stays up.
 */
export async function scanKeys(
  client: RedisClient,
  pattern: string,
  visit: (keys: string[]) => Promise<void>,
  count = 1000,
): Promise<void> {
  const nodes = isCluster(client) ? client.nodes("master") : [client];
  for (const node of nodes) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", count);
      if (keys.length > 0) await visit(keys);
      cursor = next;
    } while (cursor !== "0");
  }
}

/**
 * On a Cluster, waits up to `timeoutMs` until a replica of `key`'s master holds every write this
 * client made there (WAIT 1, sent with a command on `key` so it reaches that master): a write a
 * failover must not lose, such as the record of a task that was paid for. Replication is
 * asynchronous, so without it a master killed just after the write could take it along. Returns
 * the replicas that have it (0 when none answered in time: the write stands, unconfirmed); a single
 * Redis is not asked (undefined).
 */
export async function awaitReplica(
  client: RedisClient,
  key: string,
  timeoutMs: number,
): Promise<number | undefined> {
  if (!isCluster(client)) return undefined;
  const replies = (await client.pipeline().exists(key).wait(1, timeoutMs).exec()) ?? [];
  const [error, replicas] = replies[1] ?? [new Error("no reply to WAIT"), 0];
  if (error) throw error;
  return Number(replicas);
}
