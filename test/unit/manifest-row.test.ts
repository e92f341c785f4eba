import { describe, expect, it } from "vitest";
import {
  createRowValidator,
  formatRowError,
  ManifestOptionError,
  ManifestParseError,
  parseSetArguments,
  type RawRow,
  type RowContext,
  type RowResult,
  validateRow,
} from "../../src/manifest/index.js";

const file = "prompts.csv";

function check(fields: Record<string, unknown>, context: Partial<RowContext> = {}, line = 7): RowResult {
  return validateRow({ line, fields }, { file, ...context });
}

function params(fields: Record<string, unknown>, context: Partial<RowContext> = {}) {
  const result = check(fields, context);
  if (!result.ok) throw new Error(result.errors.map(formatRowError).join("\n"));
  return result.row.params;
}

function errors(fields: Record<string, unknown>, context: Partial<RowContext> = {}): string[] {
  const result = check(fields, context);
  return result.ok ? [] : result.errors.map(formatRowError);
}

describe("strict values", () => {
  it.each([
    // field, value, accepted as
    ["num_inference_steps", "30", 30],
    ["num_inference_steps", "2", 2],
    ["num_inference_steps", "250", 250],
    ["num_inference_steps", "030", 30],
    ["num_inference_steps", "30.0", 30],
    ["num_inference_steps", 40, 40],
    ["guidance_scale", "7.5", 7.5],
    ["guidance_scale", "7.50", 7.5],
    ["guidance_scale", "0", 0],
    ["guidance_scale", "20", 20],
    ["guidance_scale", 1e1, 10],
    ["seed", "0", 0],
    ["seed", "-0", 0],
    ["seed", "4294967295", 4294967295],
    ["seed", 1e3, 1000],
    ["safety_check", "true", true],
    ["safety_check", "FALSE", false],
    ["safety_check", "Yes", true],
    ["safety_check", "no", false],
    ["safety_check", "1", true],
    ["safety_check", "0", false],
    ["safety_check", false, false],
    ["safety_check", 1, true],
    ["image_size", "square_hd", "square_hd"],
    ["image_size", "Landscape_16_9", "landscape_16_9"],
    ["acceleration_level", "regular", "regular"],
    ["output_format", "png", "png"],
    ["output_format", "jpeg", "jpg"],
    ["output_format", "JPEG", "jpg"],
    ["negative_prompt", "  blurry, low quality ", "blurry, low quality"],
  ])("%s = %j is accepted as %j", (field, value, expected) => {
    expect(params({ prompt: "p", [field]: value })).toEqual({ prompt: "p", [field]: expected });
  });

  it.each([
    ["num_inference_steps", "abc", 'expected an integer from 2 to 250, found "abc"'],
    [
      "num_inference_steps",
      "0x10",
      'expected an integer from 2 to 250, found "0x10" (write plain decimal digits)',
    ],
    [
      "num_inference_steps",
      "1e2",
      'expected an integer from 2 to 250, found "1e2" (write plain decimal digits)',
    ],
    ["num_inference_steps", "30.5", 'expected an integer from 2 to 250, found "30.5" (not a whole number)'],
    ["num_inference_steps", 30.5, "expected an integer from 2 to 250, found 30.5 (not a whole number)"],
    ["num_inference_steps", "1", 'expected an integer from 2 to 250, found "1"'],
    ["num_inference_steps", "251", 'expected an integer from 2 to 250, found "251"'],
    ["num_inference_steps", true, "expected an integer from 2 to 250, found true"],
    ["guidance_scale", "1e3", 'expected a number from 0 to 20, found "1e3" (write plain decimal digits)'],
    ["guidance_scale", "7.5abc", 'expected a number from 0 to 20, found "7.5abc"'],
    ["guidance_scale", " ", 'expected a number from 0 to 20, found only whitespace (" ")'],
    ["guidance_scale", " 7.5", 'expected a number from 0 to 20, found " 7.5" (write plain decimal digits)'],
    ["guidance_scale", ".5", 'expected a number from 0 to 20, found ".5" (write plain decimal digits)'],
    ["guidance_scale", "7.", 'expected a number from 0 to 20, found "7." (write plain decimal digits)'],
    ["guidance_scale", "-0.1", 'expected a number from 0 to 20, found "-0.1"'],
    ["guidance_scale", "20.01", 'expected a number from 0 to 20, found "20.01"'],
    ["guidance_scale", "Infinity", 'expected a number from 0 to 20, found "Infinity"'],
    ["seed", "-1", 'expected an integer from 0 to 4294967295, found "-1"'],
    ["seed", "4294967296", 'expected an integer from 0 to 4294967295, found "4294967296"'],
    ["seed", [1], "expected an integer from 0 to 4294967295, found a list"],
    ["safety_check", "maybe", 'expected true/false, yes/no or 1/0, found "maybe"'],
    ["safety_check", "t", 'expected true/false, yes/no or 1/0, found "t"'],
    ["safety_check", 2, "expected true/false, yes/no or 1/0, found 2"],
    ["image_size", "huge", "expected one of square, square_hd, portrait_4_3, portrait_3_2, portrait_16_9"],
    ["image_size", " square", "expected one of square,"],
    ["acceleration_level", "max", 'expected one of none, regular, high, found "max"'],
    ["output_format", "webp", 'expected one of png, jpg, found "webp"'],
    ["output_format", 1, "expected one of png, jpg, found 1"],
    ["negative_prompt", "x".repeat(501), "expected at most 500 characters, found 501"],
    ["negative_prompt", 5, "expected text of 0 to 500 characters, found 5"],
  ])("%s = %j is an error", (field, value, message) => {
    expect(errors({ prompt: "p", [field]: value })).toEqual([
      expect.stringContaining(`${file}:7: ${field}: ${message}`),
    ]);
  });

  it.each([
    ["an empty cell", ""],
    ["a JSON null", null],
  ])("%s means not given", (_name, value) => {
    expect(params({ prompt: "p", seed: value, guidance_scale: value, safety_check: value })).toEqual({
      prompt: "p",
    });
  });

  it("a whitespace-only negative prompt is not sent", () => {
    expect(params({ prompt: "p", negative_prompt: "   " })).toEqual({ prompt: "p" });
  });

  it("returns every error of a row, in the order of its fields, as FILE:LINE: field: message", () => {
    expect(
      errors({ id: "a/b", prompt: "", num_inference_steps: "x", seed: "1.5", safety_check: "nah" }),
    ).toEqual([
      `${file}:7: id: expected 1 to 128 characters from A-Z a-z 0-9 . _ - (not starting with "."), found "a/b"`,
      `${file}:7: prompt: expected a prompt, found none`,
      `${file}:7: num_inference_steps: expected an integer from 2 to 250, found "x"`,
      `${file}:7: seed: expected an integer from 0 to 4294967295, found "1.5" (not a whole number)`,
      `${file}:7: safety_check: expected true/false, yes/no or 1/0, found "nah"`,
    ]);
  });
});

describe("prompt and id", () => {
  it("keeps tabs, line breaks and characters beyond the BMP in a prompt", () => {
    expect(params({ prompt: "a cat\tsits\r\non a 🦊 mat" }).prompt).toBe("a cat\tsits\r\non a 🦊 mat");
    expect(errors({ prompt: "p", negative_prompt: "blurry\u0007" })).toEqual([
      `${file}:7: negative_prompt: expected text without control characters (tab and line breaks are fine), found U+0007 at character 7`,
    ]);
  });

  it("trims the prompt and measures it in characters (code points)", () => {
    expect(params({ prompt: "  a cat \n" }).prompt).toBe("a cat");
    expect(params({ prompt: "🙂".repeat(5000) }).prompt).toHaveLength(10_000);
    expect(errors({ prompt: `${"🙂".repeat(5000)}x` })).toEqual([
      `${file}:7: prompt: expected at most 5000 characters, found 5001`,
    ]);
  });

  it.each([
    ["missing", {}, "expected a prompt, found none"],
    ["empty", { prompt: "" }, "expected a prompt, found none"],
    [
      "whitespace only",
      { prompt: " \t " },
      'expected text of 1 to 5000 characters, found only whitespace (" \\t ")',
    ],
    ["not text", { prompt: 42 }, "expected text of 1 to 5000 characters, found 42"],
    [
      "NUL-holding",
      { prompt: "a cat\u0000 in snow" },
      "expected text without control characters (tab and line breaks are fine), found U+0000 at character 6",
    ],
    [
      "escape-holding",
      { prompt: "🙂 a\u001b[31m red fox" },
      "expected text without control characters (tab and line breaks are fine), found U+001B at character 4",
    ],
    [
      "lone-surrogate",
      { prompt: "a \ud800 fox" },
      "expected text without a lone UTF-16 surrogate (a broken \\u escape), found one at character 3",
    ],
    [
      "indented NUL-holding",
      { prompt: "  a\u0000" },
      "expected text without control characters (tab and line breaks are fine), found U+0000 at character 4",
    ],
  ])("a %s prompt is an error", (_name, fields, message) => {
    expect(errors(fields)).toEqual([`${file}:7: prompt: ${message}`]);
  });

  it.each([["row-1"], ["A.b_c-9"], ["x".repeat(128)], ["a..."], ["a.meta"]])(
    "id %j is accepted as given",
    (id) => {
      const result = check({ prompt: "p", id });
      expect(result.ok && [result.row.id, result.row.idGiven]).toEqual([id, true]);
    },
  );

  it("a JSON whole-number id is taken as its digits", () => {
    const result = check({ prompt: "p", id: 42 });
    expect(result.ok && result.row.id).toBe("42");
  });

  it.each([["."], [".."], ["a/b"], ["a:b"], ["x".repeat(129)], ["é"], [" a"], [-1], [1.5]])(
    "id %j is an error",
    (id) => {
      expect(errors({ prompt: "p", id })).toEqual([
        expect.stringMatching(/^prompts\.csv:7: id: expected 1 to 128/),
      ]);
    },
  );

  it("without an id, one is derived and marked as such", () => {
    const result = check({ prompt: "p" });
    expect(result.ok && [result.row.id, result.row.idGiven]).toEqual([
      expect.stringMatching(/^[0-9a-f]{16}$/),
      false,
    ]);
  });
});

describe("aliases and metadata", () => {
  it("accepts the market API's names", () => {
    expect(
      params({ prompt: "p", acceleration: "high", enable_safety_checker: "no", output_format: "jpeg" }),
    ).toEqual({
      prompt: "p",
      acceleration_level: "high",
      safety_check: false,
      output_format: "jpg",
    });
  });

  it("reports an error with the name the user wrote", () => {
    expect(errors({ prompt: "p", acceleration: "fast" })).toEqual([
      `${file}:7: acceleration: expected one of none, regular, high, found "fast"`,
    ]);
  });

  it("a parameter given under both names is an error, unless one is empty", () => {
    expect(errors({ prompt: "p", acceleration_level: "high", acceleration: "none" })).toEqual([
      `${file}:7: acceleration: expected one of "acceleration_level" and "acceleration", found both`,
    ]);
    expect(params({ prompt: "p", acceleration_level: "", acceleration: "none" })).toEqual({
      prompt: "p",
      acceleration_level: "none",
    });
  });

  it("a metadata value nested too deeply to keep is that field's error, not a crash of the file", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(errors({ prompt: "p", meta: deep, id: "r1" })).toEqual([
      "prompts.csv:7: meta: a JSON value nested too deeply to keep (give it as a string)",
    ]);
  });

  it("carries every other non-empty field as text metadata", () => {
    const result = check({
      prompt: "p",
      client: "acme",
      count: 3,
      ok: true,
      tags: ["a", "b"],
      extra: { k: 1 },
      empty: "",
      nil: null,
    });
    expect(result.ok && result.row.metadata).toEqual({
      client: "acme",
      count: "3",
      ok: "true",
      tags: '["a","b"]',
      extra: '{"k":1}',
    });
    expect(result.ok && result.row.params).toEqual({ prompt: "p" });
  });

  it.each([
    ["image-size", "image_size"],
    ["imagesize", "image_size"],
    ["Image Size", "image_size"],
    ["IMAGE_SIZE", "image_size"],
    ["size", "image_size"],
    ["steps", "num_inference_steps"],
    ["num_inference_step", "num_inference_steps"],
    ["guidance", "guidance_scale"],
    ["cfg", "guidance_scale"],
    ["negative", "negative_prompt"],
    ["negative_promt", "negative_prompt"],
    ["accel", "acceleration_level"],
    ["format", "output_format"],
    ["safety", "safety_check"],
    ["sead", "seed"],
    ["Seed", "seed"],
    ["promt", "prompt"],
    ["ID", "id"],
    // Two adjacent letters swapped count as one edit.
    ["modle", "model"],
    ["guidacne_scale", "guidance_scale"],
  ])("column %j is metadata, with a warning naming %s", (column, meant) => {
    const result = check({ prompt: "p", [column]: "30" });
    expect(result.ok).toBe(true);
    expect(result.ok && result.row.metadata).toEqual({ [column]: "30" });
    expect(result.warnings).toEqual([
      `"${column}" is not a parameter and is kept as metadata; did you mean "${meant}"?`,
    ]);
  });

  it.each([["notes"], ["category"], ["style"], ["title"], ["client_id"], ["model"]])(
    "column %j gives no warning",
    (column) => {
      expect(check({ prompt: "p", [column]: "x" }).warnings).toEqual([]);
    },
  );

  it("a row the reader could not use reports its problem", () => {
    const raw: RawRow = {
      line: 12,
      fields: {},
      problem: { field: "row", message: "expected a JSON object, found 42" },
    };
    const result = validateRow(raw, { file: "a.jsonl" });
    expect(result.ok ? [] : result.errors.map(formatRowError)).toEqual([
      "a.jsonl:12: row: expected a JSON object, found 42",
    ]);
  });
});

describe("precedence: row, then --set, then file defaults, then built-in defaults", () => {
  const sets = { seed: "2", guidance_scale: "5" };
  const defaults = { seed: 3, guidance_scale: 6, num_inference_steps: 40 };

  it.each([
    ["the row's value wins", { prompt: "p", seed: "1" }, 1],
    ["--set comes next", { prompt: "p" }, 2],
    ["an empty cell falls through to --set", { prompt: "p", seed: "" }, 2],
  ])("%s", (_name, fields, seed) => {
    expect(params(fields, { sets, defaults }).seed).toBe(seed);
  });

  it("file defaults come after --set; nothing given means nothing sent", () => {
    expect(params({ prompt: "p" }, { sets, defaults })).toEqual({
      prompt: "p",
      seed: 2,
      guidance_scale: 5,
      num_inference_steps: 40,
    });
    expect(params({ prompt: "p" }, { defaults })).toEqual({
      prompt: "p",
      seed: 3,
      guidance_scale: 6,
      num_inference_steps: 40,
    });
    expect(params({ prompt: "p" })).toEqual({ prompt: "p" });
  });

  it("aliases work in --set and defaults, and a row's canonical name overrides them", () => {
    const context = { sets: { acceleration: "regular" }, defaults: { enable_safety_checker: false } };
    expect(params({ prompt: "p" }, context)).toEqual({
      prompt: "p",
      acceleration_level: "regular",
      safety_check: false,
    });
    expect(params({ prompt: "p", acceleration_level: "high", safety_check: "yes" }, context)).toEqual({
      prompt: "p",
      acceleration_level: "high",
      safety_check: true,
    });
  });

  it("the estimate follows the effective acceleration", () => {
    const estimate = (fields: Record<string, unknown>, context: Partial<RowContext> = {}) => {
      const result = check({ prompt: "p", ...fields }, context);
      return result.ok ? result.row.estimatedCredits : undefined;
    };
    expect([estimate({}), estimate({ acceleration: "none" }), estimate({ acceleration: "regular" })]).toEqual(
      [8, 8, 7],
    );
    expect(estimate({}, { sets: { acceleration_level: "high" } })).toBe(6);
  });

  it("an invalid --set stops before any row, naming every problem", () => {
    const make = () => createRowValidator({ file, sets: { seed: "x", steps: "30", prompt: "p" } });
    expect(make).toThrow(ManifestOptionError);
    expect(make).toThrow('--set seed: expected an integer from 0 to 4294967295, found "x"');
    expect(make).toThrow(
      '--set steps: expected a parameter name, found "steps" (did you mean "num_inference_steps"?)',
    );
    expect(make).toThrow("--set prompt: expected a parameter, found a per-row field");
  });

  it("invalid file defaults are a parse error at the defaults' line", () => {
    let error: unknown;
    try {
      createRowValidator({
        file: "m.json",
        defaults: { guidance_scale: "high", colour: "red" },
        defaultsLine: 3,
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ManifestParseError);
    expect(error).toMatchObject({ code: "defaults", line: 3 });
    expect((error as Error).message).toBe(
      'm.json:3: defaults.guidance_scale: expected a number from 0 to 20, found "high"; defaults.colour: expected a parameter name, found "colour"',
    );
  });
});

describe("parseSetArguments", () => {
  it("splits key=value at the first =", () => {
    expect(parseSetArguments(["seed=1", " image_size =square", "negative_prompt=a=b", "x="])).toEqual({
      seed: "1",
      image_size: "square",
      negative_prompt: "a=b",
      x: "",
    });
  });

  it.each([[["seed"]], [["=1"]], [["seed=1", "seed=2"]]])("refuses %j", (args) => {
    expect(() => parseSetArguments(args)).toThrow(ManifestOptionError);
  });
});
