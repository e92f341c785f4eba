/**
 * The admin port bound to loopback answers only to loopback names: a page of another site whose
 * name was rebound to 127.0.0.1 (DNS rebinding) sends its own name in `Host` and must not read
 * `/metrics` (batch names, accounts, credits). Bound elsewhere, Prometheus scrapes it by any name.
 */
import { request } from "node:http";
import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { startAdminServer } from "../../src/metrics/admin-server.js";

/** GET /metrics from the server at `via`:`port`, naming `host` in the Host header. */
function get(port: number, host: string, via = "127.0.0.1"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: via, port, path: "/metrics", headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("admin port Host check", () => {
  it("on loopback: metrics for localhost, 127.0.0.1 and [::1]; 421 for another name", async () => {
    const registry = new Registry();
    new Counter({ name: "kie_batch_test_total", help: "a metric", registers: [registry] }).inc();
    const admin = await startAdminServer({ port: 0, registry, log: silentLogger() });
    try {
      for (const host of [`localhost:${admin.port}`, `127.0.0.1:${admin.port}`, `[::1]:${admin.port}`]) {
        const res = await get(admin.port, host);
        expect(res.status, host).toBe(200);
        expect(res.body).toContain("kie_batch_test_total 1");
      }
      const rebound = await get(admin.port, `evil.example:${admin.port}`);
      expect(rebound.status).toBe(421);
      expect(rebound.body).not.toContain("kie_batch_test_total");
    } finally {
      await admin.close();
    }
  });

  it("bound to loopback spelt another way (0:0:0:0:0:0:0:1): the same check", async () => {
    const admin = await startAdminServer({
      port: 0,
      host: "0:0:0:0:0:0:0:1",
      registry: new Registry(),
      log: silentLogger(),
    }).catch(() => undefined);
    // A machine without IPv6 on loopback cannot bind it: nothing to check there.
    if (admin === undefined) return;
    try {
      const { status } = await get(admin.port, "evil.example", "::1");
      expect(status).toBe(421);
    } finally {
      await admin.close();
    }
  });

  it("bound to every address: any Host (a scraper names it as it likes)", async () => {
    const admin = await startAdminServer({
      port: 0,
      host: "0.0.0.0",
      registry: new Registry(),
      log: silentLogger(),
    });
    try {
      expect((await get(admin.port, "metrics.internal:9464")).status).toBe(200);
    } finally {
      await admin.close();
    }
  });
});
