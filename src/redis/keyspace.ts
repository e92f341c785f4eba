import type { ChainableCommander, Cluster } from "ioredis";
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
 * asynchronous, so without it a master killed just after the write could take it along.
 *
 * WAIT holds the connection to that master, which every command of this process to it shares, for
 * up to `timeoutMs` when no replica answers: so the master is asked first (ROLE, same round trip
 * count as a cache miss, never stale) and WAIT is sent only when it has a replica online (after a
 * failover, none until the dead node comes back). Never throws: the write itself is done.
 * Returns why the write is not confirmed on a replica (to be logged), or undefined when it is, or
 * on a single Redis (not asked).
 */
export async function awaitReplica(
  client: RedisClient,
  key: string,
  timeoutMs: number,
): Promise<string | undefined> {
  if (!isCluster(client)) return undefined;
  try {
    const role = await secondReply(client.pipeline().exists(key).role(), "ROLE");
    // A master's ROLE: ["master", offset, [[ip, port, offset], ...]], its replicas online only.
    const replicas = Array.isArray(role) && Array.isArray(role[2]) ? role[2].length : 0;
    if (replicas === 0) return "its master has no replica online";
    const acked = await secondReply(client.pipeline().exists(key).wait(1, timeoutMs), "WAIT");
    if (Number(acked) === 0) return `no replica confirmed it within ${timeoutMs} ms (WAIT answered 0)`;
    return undefined;
  } catch (error) {
    return `the replica check failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** The second reply of a two-command pipeline; throws its error. */
async function secondReply(pipeline: ChainableCommander, what: string): Promise<unknown> {
  const replies = (await pipeline.exec()) ?? [];
  const [error, reply] = replies[1] ?? [new Error(`no reply to ${what}`), undefined];
  if (error) throw error;
  return reply;
}
