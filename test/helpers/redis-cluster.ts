/**
 * A real Redis Cluster on loopback for tests: three masters and three replicas, each a
 * `redis-server --cluster-enabled yes` on a free port with its files in a temporary directory,
 * joined by `redis-cli --cluster create ... --cluster-replicas 1`. `stop()` kills every server and
 * removes the directory; a master can be killed (SIGKILL) to watch its replica take over.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { openRedis, waitForRedis } from "../../src/app/connections.js";
import { loadConfig } from "../../src/config/index.js";
import type { RedisClient } from "../../src/redis/script.js";
import { freePort } from "./free-port.js";

const NODES = 6;
/** How long a cluster may take to form, or a replica to take over from a killed master. */
const FORM_TIMEOUT_MS = 20_000;

interface Node {
  port: number;
  child: ChildProcess;
  exited: Promise<void>;
  stderr: string;
}

export interface TestCluster {
  /** REDIS_CLUSTER_NODES for the seed nodes: every node, `127.0.0.1:<port>,...`. */
  readonly seeds: string;
  readonly ports: readonly number[];
  /** A Cluster client for test code; closed by `stop()`. */
  client(): Cluster;
  /** The port of the master serving `key` now. */
  masterOf(key: string): Promise<number>;
  /** The ports of the masters now. */
  masters(): Promise<number[]>;
  /** How many times the node on `port` ran `command` (INFO commandstats). */
  calls(port: number, command: string): Promise<number>;
  /** SIGKILLs the redis-server on `port` and waits for its exit. */
  kill(port: number): Promise<void>;
  /** Resolves once every live node says cluster_state:ok and `port` is no master of any slot. */
  waitForFailover(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** One plain connection to a node, for CLUSTER commands; quit after `fn`. */
async function onNode<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

function runCli(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("redis-cli", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`redis-cli ${args.join(" ")} exited ${code}: ${output}`)),
    );
  });
}

/**
 * Asks until `check` is true or `timeoutMs` passes. The cluster's state changes inside the
 * servers (gossip, elections) with nothing to subscribe to: asking again is the only way.
 */
async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = FORM_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`the test cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface TestClusterOptions {
  /** cluster-node-timeout of every node. @defaultValue 1000 */
  nodeTimeoutMs?: number;
}

/**
 * A port for a cluster node: free now, and so is its cluster bus port (10,000 above, which must
 * stay under 65,536). A port whose bus port an outgoing connection holds made the node exit at
 * start, now and then, on a busy machine.
 */
async function nodePort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port <= 55_535 && (await portFree(port + 10_000))) return port;
  }
}

/** Whether a loopback port can be bound right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * One cluster node in its own folder under `dir`, answering. A node that exits at start (a port
 * taken between the check and its bind) is started again on other ports, up to three times.
 */
async function startNode(dir: string, options: TestClusterOptions): Promise<Node> {
  for (let attempt = 1; ; attempt++) {
    const port = await nodePort();
    // Each node's own folder: a replica writes the RDB it syncs from, and they must not share one.
    const nodeDir = join(dir, String(port));
    await mkdir(nodeDir, { recursive: true });
    const settings: Record<string, string> = {
      port: String(port),
      bind: "127.0.0.1",
      "cluster-enabled": "yes",
      "cluster-config-file": join(nodeDir, "nodes.conf"),
      "cluster-node-timeout": String(options.nodeTimeoutMs ?? 1_000),
      dir: nodeDir,
      save: "",
      appendonly: "no",
      "protected-mode": "yes",
      // A replica's first sync at once, not after the default 5 s wait for more replicas: a
      // master killed before its replica synced would leave it nothing to take over.
      "repl-diskless-sync-delay": "0",
    };
    const args = Object.entries(settings).flatMap(([name, value]) => [`--${name}`, value]);
    // Its log (stdout) too: why a node exits is said there.
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    const node: Node = {
      port,
      child,
      stderr: "",
      exited: new Promise((resolve) => child.once("close", () => resolve())),
    };
    const keep = (chunk: Buffer) => {
      node.stderr = (node.stderr + chunk.toString()).slice(-4_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    try {
      await waitForRedis(`redis://127.0.0.1:${port}`, {
        timeoutMs: 10_000,
        alive: () => {
          if (child.exitCode !== null) throw new Error(`redis-server :${port} exited: ${node.stderr}`);
        },
      });
      return node;
    } catch (error) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await node.exited;
      if (attempt >= 3) throw error;
    }
  }
}

export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), "kie-cluster-"));
  const nodes: Node[] = [];
  const clients: Cluster[] = [];
  const stop = async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    for (const c of clients) c.disconnect();
    for (const node of nodes)
      if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill("SIGKILL");
    await Promise.all(nodes.map((n) => n.exited));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < NODES; i++) nodes.push(await startNode(dir, options));
    const ports = nodes.map((n) => n.port);
    await runCli([
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
    for (const port of ports) {
      await until(`:${port} says cluster_state:ok`, () =>
        onNode(port, async (r) => (await r.cluster("INFO")).includes("cluster_state:ok")),
      );
    }
    // cluster_state:ok says nothing of the replicas' first sync: wait until each is linked.
    for (const port of ports) {
      await until(`:${port} in sync (a master, or a replica linked to its master)`, () =>
        onNode(port, async (r) => {
          const info = await r.info("replication");
          return info.includes("role:master") || info.includes("master_link_status:up");
        }),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const ports = nodes.map((n) => n.port);
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  /** [start, end, master port] per slot range, from a live node. */
  const slotOwners = () =>
    onNode(live()[0]!.port, async (r) => {
      const slots = await r.cluster("SLOTS");
      return slots.map(([start, end, master]) => ({ start, end, port: Number(master?.[1]) }));
    });
  return {
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(","),
    ports,
    client() {
      const client = new Cluster(
        ports.map((port) => ({ host: "127.0.0.1", port })),
        { redisOptions: { maxRetriesPerRequest: 3 }, retryDelayOnFailover: 500, maxRedirections: 40 },
      );
      client.on("error", () => {});
      clients.push(client);
      return client;
    },
    async masterOf(key) {
      const slot = await onNode(live()[0]!.port, (r) => r.cluster("KEYSLOT", key));
      const owner = (await slotOwners()).find((range) => range.start <= slot && slot <= range.end);
      if (!owner) throw new Error(`no master serves slot ${slot}`);
      return owner.port;
    },
    async masters() {
      return [...new Set((await slotOwners()).map((range) => range.port))].sort((a, b) => a - b);
    },
    calls: (port, command) =>
      onNode(port, async (r) => {
        const line = (await r.info("commandstats")).match(new RegExp(`cmdstat_${command}:calls=(\\d+)`));
        return Number(line?.[1] ?? 0);
      }),
    async kill(port) {
      const node = nodes.find((n) => n.port === port);
      if (!node) throw new Error(`no node on :${port}`);
      node.child.kill("SIGKILL");
      await node.exited;
    },
    async waitForFailover(port) {
      await until(`a replica took over from :${port}`, async () => {
        const owners = await slotOwners();
        if (owners.some((range) => range.port === port)) return false;
        for (const node of live()) {
          const info = await onNode(node.port, (r) => r.cluster("INFO"));
          if (!info.includes("cluster_state:ok")) return false;
        }
        return true;
      });
    },
    stop,
  };
}

export interface ClusterContext {
  cluster: TestCluster;
  /** The product's connection to the cluster (openRedis with REDIS_CLUSTER_NODES, as a worker). */
  redis: RedisClient;
}

/**
 * A test cluster for the file and the product's connection to it, started in beforeAll (60 s:
 * a cluster takes a few seconds to form) and closed in afterAll. Fields are live from the file's
 * first test on (read them inside hooks and tests, never at module level).
 */
export function clusterContext(options: TestClusterOptions = {}): ClusterContext {
  const ctx = {} as ClusterContext;
  beforeAll(async () => {
    ctx.cluster = await startTestCluster(options);
    ctx.redis = await openRedis(loadConfig({ REDIS_CLUSTER_NODES: ctx.cluster.seeds }), { forWorker: true });
  }, 60_000);
  afterAll(async () => {
    await ctx.redis?.quit().catch(() => ctx.redis.disconnect());
    await ctx.cluster?.stop();
  });
  return ctx;
}
