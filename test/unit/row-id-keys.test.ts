/**
 * A row id the manifest accepts must be one the archive can store under: otherwise its image is
 * paid for and then refused (`.x.meta` -> sidecar `.x.meta.json`, a name the stores keep for their
 * own metadata files).
 */
import { describe, expect, it } from "vitest";
import { assertValidKey } from "../../src/archive/keys.js";
import { imageKeyBase, sidecarKey } from "../../src/archive/sidecar.js";
import { parseRowId } from "../../src/manifest/values.js";

const ALPHABET = "abcXYZ019._-";

function randomId(random: () => number): string {
  const length = 1 + Math.floor(random() * 12);
  let id = "";
  for (let i = 0; i < length; i++) id += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return id;
}

/** A small seeded generator (mulberry32): the same ids every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("row ids and archive keys", () => {
  it.each([".a.meta", ".x.tmp", ".x", ".", ".."])("%s is refused at enqueue", (id) => {
    const parsed = parseRowId(id);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toContain('not starting with "."');
  });

  it("every id the manifest accepts names an image and a sidecar the stores accept", () => {
    const random = seeded(10);
    const ids = [
      "a.meta",
      "x.tmp",
      "a..b",
      "-",
      "_",
      "0",
      "a.meta.json",
      ...Array.from({ length: 5_000 }, () => randomId(random)),
    ];
    let accepted = 0;
    for (const id of ids) {
      if (!parseRowId(id).ok) continue;
      accepted += 1;
      expect(() => assertValidKey(sidecarKey("batch", id)), id).not.toThrow();
      for (const index of [0, 1]) {
        for (const ext of ["png", "jpg"]) {
          expect(
            () => assertValidKey(`${imageKeyBase({ batch: "batch", id }, index)}.${ext}`),
            id,
          ).not.toThrow();
        }
      }
    }
    expect(accepted).toBeGreaterThan(4_000);
  });

  it("no row's image is another row's: row x's second image and row x-2's first have two keys", () => {
    // Before, both were `b/x-2.png`: the later write replaced the other row's image.
    const png = (id: string, index: number) => `${imageKeyBase({ batch: "b", id }, index)}.png`;
    expect(png("x", 0)).toBe("b/x.png");
    expect(png("x", 1)).toBe("b/x@2.png");
    expect(png("x-2", 0)).toBe("b/x-2.png");
    expect(png("x.2", 0)).toBe("b/x.2.png");
    expect(png("x_2", 0)).toBe("b/x_2.png");
    // Every accepted id's first image against every other accepted id's later ones.
    const random = seeded(11);
    const ids = new Set([
      "x",
      "x-2",
      "x.2",
      "x_2",
      "x-2-2",
      ...Array.from({ length: 2_000 }, () => randomId(random)),
    ]);
    const accepted = [...ids].filter((id) => parseRowId(id).ok);
    const firsts = new Set(accepted.map((id) => png(id, 0)));
    for (const id of accepted)
      for (const index of [1, 2, 9])
        expect(firsts.has(png(id, index)), `${id} image ${index + 1}`).toBe(false);
  });
});
