/**
 * The callback receiver on its own (fake ledger, queue and limit): what a callback may wake, and
 * how long a half-sent request may hold a socket. (worker-webhook.test.ts runs it in a worker.)
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Ledger } from "../../src/ledger/index.js";
import { ledgerKeys } from "../../src/ledger/keys.js";
import type { JobKeyParts } from "../../src/worker/jobs.js";
import { startWebhookServer, type WebhookServer } from "../../src/worker/webhook.js";
import { capturingLogger } from "../helpers/capturing-logger.js";
import { halfSentHeldFor } from "../helpers/half-sent.js";
import { rowRecord, stateOf } from "../helpers/stage-fakes.js";

let server: WebhookServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** `delayed`: whether each wake finds the poll job delayed (true once the list runs out). */
async function receiver(options: { delayed?: boolean[]; limit?: boolean } = {}) {
  const woken: JobKeyParts[] = [];
  const promoted: string[] = [];
  /** With `limit`, the interval's promotions held (as the fleet's limit holds them). */
  const held = new Set<string>();
  const logs = capturingLogger();
  // Row "row" of batch "b" has had two tasks: t0 (lineage 0, failed and resubmitted) and t1 (now).
  const keys = ledgerKeys("webhook-test");
  const ledger = {
    getRowState: async (batch: string, rowId: string) => {
      keys.row(batch, rowId); // refuses a name the ledger cannot hold, as the real one does
      return batch === "b" && rowId === "row"
        ? stateOf(rowRecord({ batch, id: rowId, taskIds: ["t0", "t1"] }))
        : undefined;
    },
  } as unknown as Ledger;
  server = await startWebhookServer({
    port: 0,
    host: "127.0.0.1",
    ledger,
    polls: {
      wakePoll: async (key) => {
        const delayed = options.delayed?.shift() ?? true;
        if (delayed) woken.push(key);
        return delayed;
      },
    },
    promotions: {
      tryPromote: async (taskId) => {
        if (options.limit && held.has(taskId)) return false;
        held.add(taskId);
        promoted.push(taskId);
        return true;
      },
      giveBack: async (taskId) => {
        held.delete(taskId);
      },
    },
    log: logs.log,
  });
  const post = (path: string, taskId: string) =>
    fetch(`http://127.0.0.1:${server!.port}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: 200, data: { taskId, state: "success" } }),
    });
  return { woken, promoted, logs, post };
}

describe("the callback receiver", () => {
  it("wakes a lineage's poll only for that lineage's task: an older task of the row wakes nothing", async () => {
    const r = await receiver();
    expect((await r.post("/kie/b/row/r1", "t0")).status).toBe(404);
    expect((await r.post("/kie/b/row", "t1")).status).toBe(404);
    expect(r.promoted).toEqual([]);
    expect(r.woken).toEqual([]);

    expect((await r.post("/kie/b/row/r1", "t1")).status).toBe(200);
    expect((await r.post("/kie/b/row", "t0")).status).toBe(200);
    expect(r.promoted).toEqual(["t1", "t0"]);
    expect(r.woken).toEqual([
      { batch: "b", rowId: "row", resubmit: 1 },
      { batch: "b", rowId: "row", resubmit: 0 },
    ]);
  });

  it("a callback that finds no delayed poll job (it runs now) spends no promotion: the next one within the interval wakes it", async () => {
    const r = await receiver({ delayed: [false], limit: true });
    expect((await r.post("/kie/b/row/r1", "t1")).status).toBe(200);
    expect(r.woken).toEqual([]);
    expect((await r.post("/kie/b/row/r1", "t1")).status).toBe(200);
    expect(r.woken).toEqual([{ batch: "b", rowId: "row", resubmit: 1 }]);
    // Spent now: a third within the interval wakes nothing.
    expect((await r.post("/kie/b/row/r1", "t1")).status).toBe(200);
    expect(r.woken).toHaveLength(1);
    expect(r.promoted).toEqual(["t1", "t1"]);
  });

  it("a path segment longer than a name can be is no job key: 404, and no error logged", async () => {
    const r = await receiver();
    const long = "a".repeat(129);
    expect((await r.post(`/kie/${long}/row`, "t1")).status).toBe(404);
    expect((await r.post(`/kie/b/${long}`, "t1")).status).toBe(404);
    expect(r.logs.text()).not.toContain('"level":50');
  });

  it("closes a socket whose request headers never finish within seconds, not half a minute", async () => {
    await receiver();
    expect(await halfSentHeldFor(server!.port, "/kie/b/row")).toBeLessThan(9_000);
  }, 20_000);
});
