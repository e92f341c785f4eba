import { describe, expect, it } from "vitest";
import { oneTurnEach } from "../../src/simulator/turns.js";

/** Holds the thread as drawing a picture does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe("oneTurnEach (the simulator draws one picture per event-loop turn)", () => {
  it("lets a timer that came due while the first caller worked run before the second caller's work", async () => {
    const order: string[] = [];
    const next = oneTurnEach();
    const draws = [1, 2, 3].map(async (n) => {
      await next();
      order.push(`draw ${n}`);
      busy(5);
    });
    // Due during draw 1: a request arriving while a picture is drawn is read before the next.
    setTimeout(() => order.push("timer"), 1);
    await Promise.all(draws);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(order.indexOf("timer")).toBeLessThan(order.indexOf("draw 3"));
    expect(order.filter((entry) => entry.startsWith("draw"))).toEqual(["draw 1", "draw 2", "draw 3"]);
  });

  it("without it, work queued together runs back to back (what the gate is for)", async () => {
    const order: string[] = [];
    const draws = [1, 2, 3].map(async (n) => {
      await Promise.resolve();
      order.push(`draw ${n}`);
      busy(5);
    });
    setTimeout(() => order.push("timer"), 1);
    await Promise.all(draws);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(order).toEqual(["draw 1", "draw 2", "draw 3", "timer"]);
  });
});
