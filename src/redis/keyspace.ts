import type { Cluster } from "ioredis";
import type { RedisClient } from "./script.js";

/** True for an ioredis `Cluster` client (REDIS_CLUSTER_NODES), false for a single Redis. */
export function isCluster(client: RedisClient): client is Cluster {
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
