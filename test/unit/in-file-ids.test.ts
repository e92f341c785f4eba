import { describe, expect, it } from "vitest";
import type { GenerationParams } from "../../src/kie/index.js";
import { deriveRowId, type ManifestRow } from "../../src/manifest/index.js";
import { InFileIds } from "../../src/producer/in-file-ids.js";

function row(line: number, prompt: string, id?: string, extra: Partial<GenerationParams> = {}): ManifestRow {
  const params = { prompt, ...extra } as GenerationParams;
  return {
    line,
    id: id ?? deriveRowId(prompt, params),
    idGiven: id !== undefined,
    params,
    metadata: {},
    estimatedCredits: 8,
  };
}

describe("InFileIds (a dry run's ids of the file)", () => {
  it("ids are told apart by their whole digest: derived-looking ids ending 00000000 and 00000001 are two", () => {
    const ids = new InFileIds();
    expect(ids.check(row(2, "cat", "0000000000000000"))).toBe("first");
    expect(ids.check(row(3, "dog", "0000000000000001"))).toBe("first");
    expect(ids.check(row(4, "emu", "0000000000000000"))).toEqual({ conflictLine: 2 });
  });

  it("keeps every id apart as its table grows past its first size", () => {
    const ids = new InFileIds();
    for (let i = 0; i < 40_000; i++) expect(ids.check(row(i + 2, `p${i}`, `id-${i}`))).toBe("first");
    for (let i = 0; i < 40_000; i += 997)
      expect(ids.check(row(50_000 + i, `p${i}`, `id-${i}`))).toBe("repeat");
    expect(ids.check(row(99_999, "other", "id-12345"))).toEqual({ conflictLine: 12_347 });
  });

  it("a given id asking the same is a repeat; asking another prompt or parameters, a conflict with the first line", () => {
    const ids = new InFileIds();
    expect(ids.check(row(2, "cat", "a"))).toBe("first");
    expect(ids.check(row(3, "cat", "a"))).toBe("repeat");
    expect(ids.check(row(4, "dog", "a"))).toEqual({ conflictLine: 2 });
    expect(ids.check(row(5, "cat", "a", { seed: 7 }))).toEqual({ conflictLine: 2 });
  });

  it("a local image's path is not its request: the same file elsewhere is a repeat (as the enqueue compares)", () => {
    const ids = new InFileIds();
    const image = { image_path: "/a/x.png", image_sha256: "ab".repeat(32) } as Partial<GenerationParams>;
    expect(ids.check(row(2, "cat", "a", image))).toBe("first");
    expect(
      ids.check(row(3, "cat", "a", { ...image, image_path: "/b/x.png" } as Partial<GenerationParams>)),
    ).toBe("repeat");
  });

  it("rows without an id are one row per request; a given id equal to a derived one is told apart by its request", () => {
    const ids = new InFileIds();
    const owl = row(2, "owl");
    expect(ids.check(owl)).toBe("first");
    expect(ids.check(row(3, "owl"))).toBe("repeat");
    // The derived id given by hand, for the same request: the same row; for another, a conflict.
    expect(ids.check(row(4, "owl", owl.id))).toBe("repeat");
    expect(ids.check(row(5, "emu", owl.id))).toEqual({ conflictLine: 2 });
  });
});
