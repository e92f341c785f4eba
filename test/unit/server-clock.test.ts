import { describe, expect, it, vi } from "vitest";
import { syncedSweepClock } from "../../src/app/reconciler.js";
import { serverClock } from "../../src/redis/server-clock.js";

describe("serverClock", () => {
  it("is the local clock plus the offset read at the last sync, taken halfway through the round trip", async () => {
    let local = 1_000_000;
    // The server is 90 s ahead; its answer takes 40 ms to come back.
    const redis = {
      time: async (): Promise<[string, string]> => {
        const server = local + 20 + 90_000;
        local += 40;
        return [String(Math.floor(server / 1000)), String((server % 1000) * 1000 + 999)];
      },
    };
    const clock = serverClock(redis as never, () => local);
    expect(clock.now()).toBe(1_000_000);
    await clock.sync();
    expect(clock.now()).toBe(local + 90_000);
    local += 5_000;
    expect(clock.now()).toBe(local + 90_000);
  });

  it("a failed read rejects and keeps the last offset", async () => {
    let fail = false;
    const redis = {
      time: async (): Promise<[string, string]> => {
        if (fail) throw new Error("connection lost");
        return ["2000", "0"];
      },
    };
    const clock = serverClock(redis as never, () => 1_000_000);
    await clock.sync();
    expect(clock.now()).toBe(2_000_000);
    fail = true;
    await expect(clock.sync()).rejects.toThrow("connection lost");
    expect(clock.now()).toBe(2_000_000);
  });

  it("on a Redis Cluster reads every master's TIME and keeps the earliest: no batch's rows judged older than their own master says", async () => {
    const local = 1_000_000;
    const master = (aheadMs: number | "down") => ({
      time: async (): Promise<[string, string]> => {
        if (aheadMs === "down") throw new Error("connection lost");
        return [String((local + aheadMs) / 1000), "0"];
      },
    });
    const asked: string[] = [];
    const cluster = (masters: ReturnType<typeof master>[]) => ({
      isCluster: true,
      time: async (): Promise<[string, string]> => {
        asked.push("keyless");
        return [String((local + 500_000) / 1000), "0"];
      },
      nodes: (role: "master") => {
        asked.push(role);
        return masters;
      },
    });
    const clock = serverClock(cluster([master(30_000), master(-90_000), master(0)]) as never, () => local);
    await clock.sync();
    expect(clock.now()).toBe(local - 90_000);
    expect(asked).toEqual(["master"]);
    // A master that does not answer is passed over (its batches' scripts fail as well); none: rejects.
    const some = serverClock(cluster([master("down"), master(30_000)]) as never, () => local);
    await some.sync();
    expect(some.now()).toBe(local + 30_000);
    await expect(serverClock(cluster([master("down")]) as never, () => local).sync()).rejects.toThrow(
      "connection lost",
    );
    // A master that never answers (a half-open connection) is passed over after 5 s, not waited for.
    vi.useFakeTimers();
    try {
      const hanging = { time: () => new Promise<[string, string]>(() => {}) };
      const slow = serverClock(cluster([hanging as never, master(-10_000)]) as never, () => local);
      const syncing = slow.sync();
      await vi.advanceTimersByTimeAsync(5_000);
      await syncing;
      expect(slow.now()).toBe(local - 10_000);
    } finally {
      vi.useRealTimers();
    }
    // No master known yet (reconnecting): the keyless TIME.
    const none = serverClock(cluster([]) as never, () => local);
    await none.sync();
    expect(none.now()).toBe(local + 500_000);
  });

  it("a retry's clock (syncedSweepClock) is synced before use, and is the local clock when the read fails", async () => {
    const ahead = {
      time: async (): Promise<[string, string]> => [String(Math.floor(Date.now() / 1000) + 3_600), "0"],
    };
    const synced = await syncedSweepClock(ahead as never);
    expect(synced.now() - Date.now()).toBeGreaterThan(3_598_000);
    const down = { time: async () => Promise.reject(new Error("connection lost")) };
    const local = await syncedSweepClock(down as never);
    expect(Math.abs(local.now() - Date.now())).toBeLessThan(1_000);
  });
});
