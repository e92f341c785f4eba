/**
 * The archive store, ledger and fleet metrics decorators count what passes through, and change
 * nothing of it: the store's stream contract, the ledger's answers, the fleet's pauses.
 */
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import type { ArchiveStore } from "../../src/archive/types.js";
import type { PauseState as PauseInfo } from "../../src/fleet/index.js";
import type { Ledger } from "../../src/ledger/index.js";
import { instrumentStore, putKind } from "../../src/metrics/archive-store.js";
import { fleetMetrics, observeFleet } from "../../src/metrics/fleet.js";
import { instrumentLedger } from "../../src/metrics/ledger.js";
import type { FleetPort } from "../../src/worker/ports.js";
import { openFleet } from "../helpers/open-fleet.js";
import { metricsFor, seriesValue } from "../helpers/prometheus.js";

function memoryStore(
  options: { failAfterBytes?: number } = {},
): ArchiveStore & { objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  return {
    objects,
    locationOf: (key) => `/mem/${key}`,
    head: async () => undefined,
    get: async () => undefined,
    remove: async (key) => void objects.delete(key),
    async copy(fromKey, toKey) {
      const bytes = objects.get(fromKey);
      if (bytes) objects.set(toKey, bytes);
      return {};
    },
    close: async () => {},
    async put(key, body, putOptions) {
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        await pipeline(
          body,
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              size += chunk.length;
              if (options.failAfterBytes !== undefined && size > options.failAfterBytes) {
                callback(new Error("disk full"));
                return;
              }
              chunks.push(chunk);
              callback();
            },
          }),
        );
      } catch (error) {
        body.destroy();
        throw error;
      }
      objects.set(key, Buffer.concat(chunks));
      putOptions.onStored?.(size);
    },
  };
}

describe("metrics: archive puts", () => {
  it("counts the bytes of successful puts by kind, and the store gets exactly the body's bytes", async () => {
    const metrics = metricsFor();
    const inner = memoryStore();
    const store = instrumentStore(inner, metrics);
    const image = Buffer.alloc(300_000, 7);
    await store.put("b/r.png", Readable.from([image.subarray(0, 100_000), image.subarray(100_000)]), {
      contentType: "image/png",
    });
    await store.put("b/r.json", Readable.from([Buffer.from("{}\n")]), {
      contentType: "application/json; charset=utf-8",
    });
    expect(inner.objects.get("b/r.png")?.equals(image)).toBe(true);
    expect(await seriesValue(metrics.archiveBytes, { kind: "image" })).toBe(300_000);
    expect(await seriesValue(metrics.archiveBytes, { kind: "sidecar" })).toBe(3);
    expect(await seriesValue(metrics.archivePutDuration, { kind: "image", outcome: "ok" }, "_count")).toBe(1);
  });

  it("a failed put counts no bytes, rejects with the store's error and destroys the caller's body", async () => {
    const metrics = metricsFor();
    const store = instrumentStore(memoryStore({ failAfterBytes: 10 }), metrics);
    const body = Readable.from([Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(8)]);
    await expect(store.put("b/r.png", body, { contentType: "image/png" })).rejects.toThrow("disk full");
    await expect.poll(() => body.destroyed, { timeout: 2_000 }).toBe(true);
    expect(await seriesValue(metrics.archiveBytes, { kind: "image" })).toBe(0);
    expect(await seriesValue(metrics.archivePutDuration, { kind: "image", outcome: "error" }, "_count")).toBe(
      1,
    );
  });

  it("a body that fails mid-stream makes the put reject with the body's own error", async () => {
    const store = instrumentStore(memoryStore(), metricsFor());
    const broken = new Error("connection reset mid-download");
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(4));
        this.destroy(broken);
      },
    });
    await expect(store.put("b/r.png", body, { contentType: "image/png" })).rejects.toBe(broken);
  });

  it.each([
    ["image/png", "image"],
    ["image/jpeg", "image"],
    ["application/json; charset=utf-8", "sidecar"],
    ["text/plain", "other"],
  ])("a put of %s is of kind %s", (contentType, kind) => {
    expect(putKind(contentType)).toBe(kind);
  });
});

describe("metrics: ledger and fleet", () => {
  it("credits are counted when settled, not when a task's spend was settled already", async () => {
    const metrics = metricsFor();
    const outcomes = ["settled", "already-settled"] as const;
    let i = 0;
    const ledger = instrumentLedger(
      {
        settleCredits: async () => outcomes[i++]!,
        transition: async () => ({ ok: true, row: undefined, finished: i === 2 }),
      } as unknown as Ledger,
      metrics,
    );
    await ledger.settleCredits("b", "r", 8);
    await ledger.settleCredits("b", "r", 8);
    await ledger.transition("b", "r", { from: ["archiving"], to: "archived" });
    expect(await seriesValue(metrics.creditsSpent)).toBe(8);
    expect(await seriesValue(metrics.rowsFinished, { status: "archived" })).toBe(1);
    expect(await seriesValue(metrics.batchesFinished)).toBe(1);
  });

  it("credits settled with a move (the poll's settle) are counted once, not when already settled or not asked", async () => {
    const metrics = metricsFor();
    const answers = [{ settled: "settled" }, { settled: "already-settled" }, {}] as const;
    let i = 0;
    const ledger = instrumentLedger(
      {
        transition: async () => ({ ok: true, row: undefined, finished: false, ...answers[i++] }),
      } as unknown as Ledger,
      metrics,
    );
    const move = {
      from: ["generating" as const],
      to: "archiving" as const,
      settle: { spent: 6, taskId: "t" },
    };
    await ledger.transition("b", "r", move);
    await ledger.transition("b", "r", move);
    await ledger.transition("b", "r", { from: ["archiving"], to: "archived" });
    expect(await seriesValue(metrics.creditsSpent)).toBe(6);
  });

  function fakeFleet(): FleetPort & { state: PauseInfo | null } {
    const fleet: FleetPort & { state: PauseInfo | null } = {
      ...openFleet(),
      state: null,
      getPause: async () => fleet.state,
      readGate: async () => ({ paused: fleet.state, backoffMs: 0 }),
      pause: async (kind: PauseInfo["kind"], reason: string) => {
        if (fleet.state) return false;
        fleet.state = { kind, reason, since: 1_000 };
        return true;
      },
      resume: async (kind?: PauseInfo["kind"]) => {
        if (!kind || fleet.state?.kind === kind) fleet.state = null;
      },
      backoff: async () => ({ remainingMs: 2_000, consecutive: 1 }),
    };
    return fleet;
  }

  it("tells listeners of the pause this worker started and of a resume that cleared one, nothing else", async () => {
    const metrics = metricsFor();
    const inner = fakeFleet();
    const heard: string[] = [];
    const fleet = observeFleet(inner, [
      fleetMetrics(metrics),
      {
        onPause: (kind) => heard.push(`pause ${kind}`),
        onResume: (before) => heard.push(`resume ${before.kind}`),
      },
      {
        onPause: () => {
          throw new Error("a broken listener");
        },
      },
    ]);
    expect(await fleet.pause("out-of-credits", "402")).toBe(true);
    expect(await fleet.pause("out-of-credits", "402")).toBe(false);
    await fleet.resume("usage-cap"); // another kind: nothing cleared
    await fleet.resume("out-of-credits");
    await fleet.resume("out-of-credits"); // nothing left to clear
    await fleet.backoff("rate-limited");

    expect(heard).toEqual(["pause out-of-credits", "resume out-of-credits"]);
    expect(await seriesValue(metrics.pauses, { kind: "out-of-credits" })).toBe(1);
    expect(await seriesValue(metrics.resumes, { kind: "out-of-credits" })).toBe(1);
    expect(await seriesValue(metrics.backoffs, { kind: "rate-limited" })).toBe(1);
  });
});
