/**
 * A second process sharing an account's create limiter: `node --import tsx limiter-hammer-process.ts
 * <apiKey> <connections> <durationMs>`. Prints "ready", waits for "go" on stdin, hammers, prints
 * the admissions as one JSON line. It starts with a deliberately different rate: the one the
 * fleet configured in Redis must win.
 */
import { createInterface } from "node:readline";
import { accountId, accountKeyPattern, createFleet } from "../../src/fleet/index.js";
import { connect } from "./fleet-redis.js";
import { hammer } from "./limiter-hammer.js";

const [apiKey = "", connections = "1", durationMs = "1000"] = process.argv.slice(2);
const clients = Array.from({ length: Number(connections) }, () => connect());
await Promise.all(clients.map((c) => c.ping()));
const fleets = clients.map((c) =>
  createFleet(c, { deployment: "test", apiKey, createRate: { limit: 1_000, windowMs: 500 } }),
);
// Warm up before "ready" on an account of its own (the script loaded, the code compiled): a
// cold first call under tsx on a busy machine took longer than the whole run, and the parent's
// warm loops took every slot (the test then saw no admission of this process at all).
const warmKey = `${apiKey}-warm-up`;
const warm = createFleet(clients[0]!, { deployment: "test", apiKey: warmKey });
for (let i = 0; i < 3; i++) await warm.createLimiter.waitForSlot(AbortSignal.timeout(10_000));
const warmKeys = await clients[0]!.keys(accountKeyPattern(accountId(warmKey)));
if (warmKeys.length > 0) await clients[0]!.del(...warmKeys);

const lines = createInterface({ input: process.stdin });
process.stdout.write("ready\n");
for await (const line of lines) if (line.trim() === "go") break;
lines.close();

const results = await Promise.all(
  fleets.map((fleet, i) => hammer(fleet.createLimiter, `child-${i}`, Number(durationMs))),
);
process.stdout.write(`${JSON.stringify(results.flat())}\n`);
await Promise.all(clients.map((c) => c.quit()));
