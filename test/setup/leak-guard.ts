/**
 * Fails a test file that leaves a server, a socket (a Redis connection, a BullMQ worker's or
 * queue's connections), a child process or a worker thread open after its last test.
 *
 * vitest runs each file in its own child process (pool "forks"), and this setup file runs first
 * in it: whatever handles exist now (vitest's IPC channel, stdio) are the baseline. Its afterAll
 * is registered before the file's own hooks, so with vitest's default "stack" hook order it runs
 * after them. The private redis-server of test/global-setup.ts lives in the main process and is
 * never seen here.
 */
import { ChildProcess } from "node:child_process";
import { Server, Socket } from "node:net";
import { Worker } from "node:worker_threads";
import { afterAll } from "vitest";

/** How long a handle may take to finish closing after the file's last hook (a QUIT's socket end, a server's close). */
const GRACE_MS = 2_000;

// Node has no public API that returns the handles themselves: `getActiveResourcesInfo()` names
// only their types, which cannot say which port was left listening.
const activeHandles = (): unknown[] =>
  (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();

const baseline = new Set(activeHandles());

const redisPort = Number(new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").port || 6379);

interface Kind {
  one: string;
  many: string;
  /** Where it is, e.g. "on :38211", "to 10.0.0.2:443", "pid 4242 (redis-server)". */
  where?: string;
}

function portOf(server: Server): string {
  const address = server.address();
  return typeof address === "object" && address ? `:${address.port}` : String(address);
}

function describeHandle(handle: unknown): Kind {
  if (handle instanceof Server)
    return { one: "TCP server", many: "TCP servers", where: `on ${portOf(handle)}` };
  if (handle instanceof Socket) {
    const server = (handle as Socket & { _server?: Server })._server;
    if (server)
      return { one: "accepted connection", many: "accepted connections", where: `on ${portOf(server)}` };
    if (handle.remotePort === redisPort) return { one: "Redis connection", many: "Redis connections" };
    if (handle.remotePort !== undefined) {
      return { one: "socket", many: "sockets", where: `to ${handle.remoteAddress}:${handle.remotePort}` };
    }
    return { one: "pipe", many: "pipes" };
  }
  if (handle instanceof ChildProcess) {
    return {
      one: "child process",
      many: "child processes",
      where: `pid ${handle.pid} (${handle.spawnfile})`,
    };
  }
  if (handle instanceof Worker) return { one: "worker thread", many: "worker threads" };
  const name = (handle as object | null)?.constructor?.name ?? typeof handle;
  return { one: name, many: `${name} handles` };
}

/** One phrase per kind, e.g. "1 TCP server on :38211, 2 Redis connections". */
function describeHandles(handles: unknown[]): string {
  const kinds = new Map<string, { kind: Kind; count: number; wheres: string[] }>();
  for (const handle of handles) {
    const kind = describeHandle(handle);
    const entry = kinds.get(kind.one) ?? { kind, count: 0, wheres: [] };
    entry.count += 1;
    if (kind.where && !entry.wheres.includes(kind.where)) entry.wheres.push(kind.where);
    kinds.set(kind.one, entry);
  }
  return [...kinds.values()]
    .map(({ kind, count, wheres }) =>
      [count, count === 1 ? kind.one : kind.many, wheres.join(", ")].join(" ").trim(),
    )
    .join(", ");
}

const leaked = () => activeHandles().filter((handle) => !baseline.has(handle));

afterAll(async () => {
  // Something closed in the file's last hook may still be finishing (a socket's 'close' comes an
  // event-loop turn after QUIT is answered): wait for the handles to go, up to GRACE_MS.
  const deadline = Date.now() + GRACE_MS;
  while (leaked().length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const left = leaked();
  if (left.length === 0) return;
  // A child process would outlive this fork: end it, then fail the file.
  for (const handle of left) if (handle instanceof ChildProcess) handle.kill("SIGKILL");
  throw new Error(`test left open: ${describeHandles(left)}`);
}, GRACE_MS + 5_000);
