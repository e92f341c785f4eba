import { afterEach, describe, expect, it } from "vitest";
import { Drawing } from "../../src/simulator/drawing.js";
import { encodeImage, type ImageSpec } from "../../src/simulator/images.js";

const spec = (prompt: string, format: "png" | "jpg" = "png"): ImageSpec => ({
  prompt,
  seed: 7,
  index: 0,
  format,
  size: "square_hd",
});

/** Run in the thread before its own code: holds the thread `ms` at each request, as a slow draw does. */
const slowThread = (ms: number) => `
require("node:worker_threads").parentPort.on("message", () => {
  const until = Date.now() + ${ms};
  while (Date.now() < until) {}
});`;

/** Run in the thread before its own code: the thread ends itself at a request for "die". */
const dyingThread = `
require("node:worker_threads").parentPort.on("message", ({ spec }) => {
  if (spec.prompt === "die") process.exit(3);
});`;

const open: Drawing[] = [];
function drawing(prelude?: string): Drawing {
  const made = new Drawing(prelude);
  open.push(made);
  return made;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((made) => made.close()));
});

describe("Drawing (the simulator's pictures, drawn on a thread of their own)", () => {
  it("draws the same bytes as encodeImage, PNG and JPEG", async () => {
    const pictures = drawing();
    for (const format of ["png", "jpg"] as const) {
      const drawn = await pictures.draw(spec("a lighthouse", format));
      const here = encodeImage(spec("a lighthouse", format));
      expect(drawn.head.equals(here.head)).toBe(true);
      expect(drawn.tail.equals(here.tail)).toBe(true);
    }
  });

  it("leaves the server's thread free while a picture is drawn", async () => {
    const pictures = drawing(slowThread(400));
    let timerFired = false;
    setTimeout(() => {
      timerFired = true;
    }, 20);
    const drawn = pictures.draw(spec("slow"));
    // Drawn here, the 400 ms would have held the timer until the picture was done.
    let firedFirst: boolean | undefined;
    await drawn.then(() => {
      firedFirst = timerFired;
    });
    expect(firedFirst).toBe(true);
  });

  it("draws a picture asked for twice at once only once", async () => {
    const pictures = drawing();
    const [a, b] = await Promise.all([pictures.draw(spec("twice")), pictures.draw(spec("twice"))]);
    expect(a).toBe(b);
  });

  it("fails what a dying thread held, and the next draw starts another thread", async () => {
    const pictures = drawing(dyingThread);
    await pictures.draw(spec("fine before"));
    await expect(pictures.draw(spec("die"))).rejects.toThrow(/drawing thread stopped \(exit code 3\)/);
    const again = await pictures.draw(spec("after"));
    expect(again.head.equals(encodeImage(spec("after")).head)).toBe(true);
    // The failed draw is not kept: asked again, it is drawn again (and fails again, here).
    await expect(pictures.draw(spec("die"))).rejects.toThrow(/exit code 3/);
  });

  it("fails draws still waiting when closed, and draws nothing after", async () => {
    const pictures = drawing(slowThread(300));
    const waiting = pictures.draw(spec("never"));
    await pictures.close();
    await expect(waiting).rejects.toThrow(/closed while a picture was drawn/);
    await expect(pictures.draw(spec("later"))).rejects.toThrow(/closed/);
  });
});
