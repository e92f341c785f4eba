import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueueSet } from "../../src/bull/queues.js";
import type { Overview } from "../../src/dashboard/overview.js";
import { startDashboard } from "../../src/dashboard/server.js";
import { createLedger } from "../../src/ledger/index.js";
import {
  BATCH,
  type DashboardFixture,
  HOSTILE_ERROR,
  HOSTILE_PROMPT,
  OTHER,
  PAUSE_REASON,
  PLAIN_ERROR,
  startDashboardFixture,
} from "../helpers/dashboard-fixture.js";
import { CliProcess } from "../helpers/processes.js";
import { cleanupPrefix, REDIS_URL, testRedis, uniquePrefix } from "../helpers/redis.js";

let fixture: DashboardFixture;

beforeAll(async () => {
  fixture = await startDashboardFixture();
});
afterAll(async () => {
  await fixture?.close();
});

async function get(path: string): Promise<Response> {
  return fetch(new URL(path, fixture.dashboard.url));
}

/** The text between `<article ... data-batch="NAME">` and its end. */
function card(page: string, batch: string): string {
  const start = page.indexOf(`data-batch="${batch}"`);
  expect(start, `a card for ${batch}`).toBeGreaterThan(0);
  return page.slice(start, page.indexOf("</article>", start));
}

describe("the batch overview page", () => {
  it("shows each batch with its progress, credits, failures, pause reason and the old unarchived image", async () => {
    const res = await get("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const page = await res.text();
    expect(page).toContain('<meta http-equiv="refresh" content="5">');
    expect(page).toContain('href="/queues"');

    const spring = card(page, BATCH);
    expect(spring).toContain(
      "3/11 archived · 2 failed · 1 cancelled · 3 in progress · 2 queued (54% finished)",
    );
    for (const [state, n] of Object.entries({
      archived: 3,
      failed: 2,
      cancelled: 1,
      archiving: 1,
      queued: 2,
    })) {
      expect(spring).toContain(`data-state="${state}">${n}</strong>`);
    }
    // The bar: one segment per state with rows, widths from the counts.
    expect(spring).toMatch(/class="seg archived" style="width:27\.273%"/);
    expect(spring).toContain("<dt>estimated</dt><dd>88</dd>");
    expect(spring).toContain("<dt>spent</dt><dd>32</dd>");
    expect(spring).toContain("<dt>budget</dt><dd>100</dd>");
    expect(spring).toContain("2 failed rows");
    expect(spring).toContain(PLAIN_ERROR);
    expect(spring).toMatch(
      /role="alert"[\s\S]*Warning: row <code>old1<\/code> finished 1d 6h ago and is not archived yet/,
    );
    expect(spring).toMatch(/12d 1[78]h left/);
    expect(spring).toContain(`Submissions are paused for account <code>${fixture.accountId}</code> (manual)`);

    const autumn = card(page, OTHER);
    expect(autumn).toContain("finished</span>");
    expect(autumn).not.toContain("failed rows");
    expect(autumn).not.toContain("Warning");
  });

  it("renders prompts, errors and pause reasons as text, never as markup", async () => {
    const page = await (await get("/")).text();
    expect(page).not.toMatch(/<script|<img|<b>/i);
    expect(page).toContain("&lt;script&gt;alert(&quot;prompt&quot;)&lt;/script&gt; a red fox");
    expect(page).toContain("&lt;img src=x onerror=alert(1)&gt; content policy: the prompt was refused");
    expect(page).toContain("&lt;b&gt;maintenance&lt;/b&gt; until 14:00");
  });

  it("lists the fleet's accounts with their pause and the queues' job counts", async () => {
    const page = await (await get("/")).text();
    expect(page).toContain("submissions paused");
    expect(page).toMatch(
      new RegExp(`account <code>${fixture.accountId}</code>: PAUSED since [0-9T:.-]+Z \\(manual\\)`),
    );
    expect(page).toMatch(/<th scope="row">submit<\/th><td>1<\/td><td>0<\/td><td>0<\/td><td>0<\/td>/);
    expect(page).toContain('<th scope="row">poll</th>');
    expect(page).toContain('<th scope="row">archive</th>');
  });
});

describe("/api/batches", () => {
  it("returns the same data as JSON, user text as it was written", async () => {
    const res = await get("/api/batches");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Overview;
    expect(body.queuePrefix).toBe(fixture.fx.prefix);
    expect(body.paused).toMatchObject({ kind: "manual", reason: PAUSE_REASON, accountId: fixture.accountId });
    expect(body.queues.map((q) => [q.stage, q.waiting])).toEqual([
      ["submit", 1],
      ["poll", 0],
      ["archive", 0],
    ]);
    expect(body.batches.map((b) => b.batch).sort()).toEqual([OTHER, BATCH].sort());
    const spring = body.batches.find((b) => b.batch === BATCH)!;
    expect(spring).toMatchObject({
      total: 11,
      queued: 2,
      submitted: 1,
      generating: 1,
      archiving: 1,
      archived: 3,
      failed: 2,
      cancelled: 1,
      creditsEstimated: 88,
      creditsSpent: 32,
      budget: 100,
      finished: false,
      file: "spring.csv",
    });
    expect(spring.failures).toEqual([
      { rowId: "f1", line: 2, prompt: HOSTILE_PROMPT, error: HOSTILE_ERROR },
      { rowId: "f2", line: 2, prompt: "prompt f2", error: PLAIN_ERROR },
    ]);
    expect(spring.oldestUnarchived).toMatchObject({ rowId: "old1", warning: true });
    expect(spring.oldestUnarchived!.timeLeftMs).toBeGreaterThan(12 * 86_400_000);
    const autumn = body.batches.find((b) => b.batch === OTHER)!;
    expect(autumn).toMatchObject({ finished: true, failures: [], oldestUnarchived: null, creditsSpent: 8 });
  });
});

describe("bull-board and health", () => {
  it("serves bull-board at /queues for the three stage queues", async () => {
    const res = await get("/queues");
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('<base href="/queues/"');
    expect(page).toContain(`<title>kie-batch · ${fixture.fx.prefix}</title>`);
    const api = (await (await get("/queues/api/queues?activeQueue=submit")).json()) as {
      queues: { name: string; readOnlyMode: boolean; counts: Record<string, number> }[];
    };
    expect(api.queues.map((q) => q.name).sort()).toEqual(["archive", "poll", "submit"]);
    expect(api.queues.every((q) => q.readOnlyMode)).toBe(true);
    expect(api.queues.find((q) => q.name === "submit")?.counts.waiting).toBe(1);
  });

  it("without a token answers only to a loopback Host: a rebound name gets 421 (DNS rebinding)", async () => {
    const { port } = new URL(fixture.dashboard.url);
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path: "/api/batches", headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject).end();
      });
    for (const host of ["evil.example", `evil.example:${port}`, "10.0.0.1", "127.0.0.1.evil.example"])
      expect(await status(host), host).toBe(421);
    for (const host of ["localhost", `localhost:${port}`, "127.0.0.1", `127.0.0.1:${port}`, `[::1]:${port}`])
      expect(await status(host), host).toBe(200);
  });

  it("sends nosniff and a CSP with every answer, and refuses a write from another site's page", async () => {
    const { port } = new URL(fixture.dashboard.url);
    const send = (method: string, path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
        });
        req.on("error", reject).end();
      });
    for (const path of [
      "/",
      "/api/batches",
      "/healthz",
      "/queues",
      "/queues/api/queues",
      `/batches/${BATCH}`,
      "/nope",
    ]) {
      const res = await send("GET", path);
      expect(res.headers["x-content-type-options"], path).toBe("nosniff");
      expect(res.headers["content-security-policy"], path).toMatch(/^default-src '(none|self)'/);
    }
    expect((await send("GET", "/queues")).headers["content-security-policy"]).toMatch(/script-src 'self'/);
    // bull-board's write routes (here read-only, so refused anyway) and our forms: another site's
    // Origin is refused before any route sees the request.
    for (const path of ["/queues/api/queues/submit/pause", `/batches/${BATCH}/retry`, "/login"]) {
      expect((await send("PUT", path, { origin: "http://evil.example" })).status, path).toBe(403);
      expect((await send("POST", path, { origin: "null" })).status, path).toBe(403);
    }
    const own = await send("PUT", "/queues/api/queues/submit/pause", { origin: `http://127.0.0.1:${port}` });
    expect(own.status).not.toBe(403);
  });

  it("answers /healthz while Redis does", async () => {
    const res = await get("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, redis: "up" });
  });

  it("answers 503 with a plain message once its Redis connection is gone", async () => {
    const redis = testRedis();
    const prefix = uniquePrefix("dash-down");
    const queues = new QueueSet({ connection: redis, queuePrefix: prefix });
    for (const queue of Object.values(queues.queues)) queue.on("error", () => {});
    const dashboard = await startDashboard({
      port: 0,
      queuePrefix: prefix,
      ledger: createLedger(redis, { prefix }),
      queues: queues.queues,
      fleet: async () => ({ paused: null, accounts: [] }),
      ping: () => redis.ping(),
    });
    try {
      expect((await fetch(dashboard.url)).status).toBe(200);
      redis.disconnect();
      const page = await fetch(dashboard.url);
      expect(page.status).toBe(503);
      expect(await page.text()).toMatch(/^kie-batch dashboard: Redis is not answering/);
      const api = await fetch(new URL("/api/batches", dashboard.url));
      expect(api.status).toBe(503);
      expect(await api.json()).toMatchObject({ error: expect.stringContaining("Redis is not answering") });
      const health = await fetch(new URL("/healthz", dashboard.url));
      expect(health.status).toBe(503);
      // Open without a token: says down, never the driver's message (which names the address).
      expect(await health.json()).toEqual({ ok: false, redis: "down", error: "Redis is not answering" });
    } finally {
      await dashboard.close();
      await queues.close().catch(() => undefined);
      const cleaner = testRedis();
      await cleanupPrefix(cleaner, prefix);
      await cleaner.quit();
    }
  });
});

describe("kie-batch dashboard (spawned)", () => {
  it("serves until SIGTERM, then exits 0", async () => {
    const prefix = uniquePrefix("dash-cli");
    const cli = new CliProcess("dashboard", ["dashboard", "--port", "0"], {
      REDIS_URL,
      KIE_QUEUE_PREFIX: prefix,
      KIE_API_KEY: "",
      LOG_LEVEL: "silent",
    });
    try {
      const [, url] = await cli.waitForOutput(/dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/, {
        timeoutMs: 20_000,
      });
      const health = await fetch(new URL("/healthz", url));
      expect(health.status).toBe(200);
      const page = await (await fetch(url!)).text();
      expect(page).toContain(`No batches under queue prefix <code>${prefix}</code>`);
      cli.child.kill("SIGTERM");
      expect(await cli.exited).toEqual({ code: 0, signal: null });
      expect(cli.stdout).toContain("dashboard stopped");
    } finally {
      if (cli.running) cli.child.kill("SIGKILL");
      // bull-board's queues write their meta keys: leave nothing behind.
      const cleaner = testRedis();
      await cleanupPrefix(cleaner, prefix);
      await cleaner.quit();
    }
  });

  it("exits 1 with the usual message when Redis does not answer", async () => {
    const cli = new CliProcess("dashboard", ["dashboard", "--port", "0"], {
      REDIS_URL: "redis://127.0.0.1:1",
      LOG_LEVEL: "silent",
    });
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderr).toMatch(/^kie-batch: Redis is not answering at redis:\/\/127\.0\.0\.1:1 /);
    expect(cli.stdout).toBe("");
  });

  it("refuses a port that is not a number (exit 2)", async () => {
    const cli = new CliProcess("dashboard", ["dashboard", "--port", "web"], {
      REDIS_URL,
      LOG_LEVEL: "silent",
    });
    expect((await cli.exited).code).toBe(2);
    expect(cli.stderr).toContain('--port: expected a port number from 0 to 65535, got "web"');
  });
});
