/**
 * Makes `npm test` work on a fresh machine: when nothing answers at REDIS_URL (default
 * 127.0.0.1:6379) and `redis-server` is on the PATH, start a private one on a free port for the
 * run. Tests never FLUSHALL: each uses its own key prefix.
 *
 * First it brings dist/ up to date with src/, once, before any test spawns `bin/kie-batch.js`
 * (which runs dist/): the spawned processes then find it fresh and never build, let alone race.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureFreshBuild } from "../scripts/fresh-build.mjs";
import { redisAnswers } from "../src/app/connections.js";
import { hasRedisServer, type LocalRedis, startLocalRedis } from "../src/demo/local-redis.js";
import { startRedisContainer, USE_CONTAINERS } from "./helpers/containers.js";

let local: LocalRedis | undefined;
let container: { stop(): Promise<void> } | undefined;

export async function setup() {
  const rebuilt = await ensureFreshBuild(join(dirname(fileURLToPath(import.meta.url)), ".."));
  if (rebuilt) console.log(`[test setup] ${rebuilt.summary}`);
  if (USE_CONTAINERS) {
    const redis = await startRedisContainer();
    container = redis;
    process.env.REDIS_URL = redis.url;
    console.log(`[test setup] KIE_TESTCONTAINERS=1: Redis container at ${redis.url}`);
    return;
  }
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (await redisAnswers(url)) return;
  if (!(await hasRedisServer())) {
    throw new Error(
      `The tests need Redis: nothing answers at ${url} and redis-server is not installed (apt-get install redis-server, or set REDIS_URL).`,
    );
  }
  local = await startLocalRedis();
  process.env.REDIS_URL = local.url;
  console.log(`[test setup] no Redis at ${url}: started redis-server at ${local.url}`);
}

export async function teardown() {
  await local?.stop();
  await container?.stop();
}
