import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  assertBatchName,
  BATCH_NAME_RE,
  canonicalJson,
  createRowValidator,
  defaultBatchName,
  deriveRowId,
  estimateCredits,
  ManifestOptionError,
  type RawRow,
} from "../../src/manifest/index.js";

function idOf(
  fields: Record<string, unknown>,
  context: { sets?: Record<string, string>; defaults?: Record<string, unknown> } = {},
) {
  const result = createRowValidator({ file: "m", ...context })({ line: 2, fields } satisfies RawRow);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.row.id;
}

describe("canonicalJson", () => {
  it("sorts keys at every depth and leaves out undefined members", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: "x" }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it("writes numbers as JSON numbers", () => {
    expect(canonicalJson({ g: 7.5, s: 30 })).toBe(canonicalJson({ s: Number("30"), g: Number("7.50") }));
  });
});

describe("deriveRowId", () => {
  it("is the first 16 hex characters of sha256 over the canonical JSON of prompt and parameters", () => {
    const expected = createHash("sha256")
      .update('{"guidance_scale":7.5,"prompt":"a cat","seed":1}')
      .digest("hex")
      .slice(0, 16);
    expect(deriveRowId(" a cat ", { seed: 1, guidance_scale: 7.5 })).toBe(expected);
  });

  // Ids name rows across re-enqueues: these were computed by the implementation before the
  // faster one, and must never change.
  it.each([
    [
      '  A lighthouse at dusk, "wide" shot ',
      { seed: 7, image_size: "square_hd", acceleration_level: "none" },
      "388ca901346c1b89",
    ],
    [
      "Ünïcode prompt ✓",
      {
        guidance_scale: 7.5,
        num_inference_steps: 30,
        safety_check: false,
        negative_prompt: undefined,
        model: "text-to-image",
        Z: 1,
        a: "x",
        _b: null,
      },
      "b659509a34921250",
    ],
    ["p", { prompt: "ignored", image_url: "https://example.com/a.png", strength: 0.8 }, "7b6fd14a401a27c5"],
  ])("derives the same id as every earlier release (%j)", (prompt, params, id) => {
    expect(deriveRowId(prompt, params as never)).toBe(id);
  });

  it("7.5 and 7.50, from CSV text or a JSON number, are one value", () => {
    const ids = [
      idOf({ prompt: "a cat", guidance_scale: "7.5" }),
      idOf({ prompt: "a cat", guidance_scale: "7.50" }),
      idOf({ prompt: "a cat", guidance_scale: 7.5 }),
    ];
    expect(new Set(ids).size).toBe(1);
  });

  it("does not depend on the order of the fields", () => {
    expect(idOf({ seed: "4", prompt: "a cat", image_size: "square" })).toBe(
      idOf({ prompt: "a cat", image_size: "square", seed: "4" }),
    );
  });

  it("a trimmed prompt, an alias or a different spelling of a value gives the same id", () => {
    const base = idOf({ prompt: "a cat", acceleration_level: "high", output_format: "jpg" });
    expect(idOf({ prompt: "  a cat\n", acceleration: "high", output_format: "jpeg" })).toBe(base);
  });

  it("a seed, a parameter or the prompt changes the id", () => {
    const base = idOf({ prompt: "a cat" });
    expect(idOf({ prompt: "a cat", seed: "1" })).not.toBe(base);
    expect(idOf({ prompt: "a cat", seed: "1" })).not.toBe(idOf({ prompt: "a cat", seed: "2" }));
    expect(idOf({ prompt: "a dog" })).not.toBe(base);
    expect(idOf({ prompt: "a cat", num_inference_steps: "30" })).not.toBe(base);
  });

  it("hashes the effective parameters: --set and defaults count, metadata does not", () => {
    const explicit = idOf({ prompt: "a cat", seed: "7" });
    expect(idOf({ prompt: "a cat" }, { sets: { seed: "7" } })).toBe(explicit);
    expect(idOf({ prompt: "a cat" }, { defaults: { seed: 7 } })).toBe(explicit);
    expect(idOf({ prompt: "a cat", seed: "7", client: "acme", note: "x" })).toBe(explicit);
  });

  it("identical rows without ids share one id", () => {
    expect(idOf({ prompt: "a cat" })).toBe(idOf({ prompt: "a cat" }));
  });
});

describe("batch names", () => {
  it.each([["prompts"], ["a"], ["A.b_c-9"], ["x".repeat(64)], ["2024-05-01"], ["-x"]])(
    "%j is valid",
    (name) => {
      expect(BATCH_NAME_RE.test(name)).toBe(true);
      expect(() => assertBatchName(name)).not.toThrow();
    },
  );

  it.each([[""], [".hidden"], [".."], ["a/b"], ["a:b"], ["a b"], ["x".repeat(65)], ["é"]])(
    "%j is refused",
    (name) => {
      expect(BATCH_NAME_RE.test(name)).toBe(false);
      expect(() => assertBatchName(name)).toThrow(ManifestOptionError);
      expect(() => assertBatchName(name)).toThrow("use 1 to 64 characters from A-Z a-z 0-9 . _ -");
    },
  );

  it.each([
    ["prompts.csv", "prompts"],
    ["/data/in/spring-batch_2.jsonl", "spring-batch_2"],
    ["My Prompts (v2).csv", "My-Prompts-v2"],
    ["Über café.json", "Uber-cafe"],
    [".hidden.csv", "hidden"],
    ["..weird name.csv", "weird-name"],
    ["archive.tar.csv", "archive.tar"],
    ["noext", "noext"],
    [`${"a".repeat(80)}.csv`, "a".repeat(64)],
    ["日本語 prompts.csv", "prompts"],
    ["-dash-.csv", "dash"],
  ])("the default name of %j is %j", (path, name) => {
    expect(defaultBatchName(path)).toBe(name);
    expect(BATCH_NAME_RE.test(defaultBatchName(path))).toBe(true);
  });

  it("is the same for the same file, so enqueuing it again is idempotent", () => {
    expect(defaultBatchName("/a/prompts.csv")).toBe(defaultBatchName("/b/prompts.csv"));
  });

  it.each([["-"], ["日本語.csv"], ["....csv"], ["---.csv"]])(
    "cannot derive a name from %j and says to pass --batch",
    (path) => {
      expect(() => defaultBatchName(path)).toThrow(ManifestOptionError);
      expect(() => defaultBatchName(path)).toThrow("--batch");
    },
  );
});

describe("estimateCredits", () => {
  it.each([
    ["none", 8],
    ["regular", 7],
    ["high", 6],
    [undefined, 8],
  ] as const)("acceleration %s costs %i", (level, credits) => {
    expect(estimateCredits(level === undefined ? {} : { acceleration_level: level })).toBe(credits);
  });
});
