/**
 * The result index's key: the canonical effective request, hashed. Same request, same hash
 * whatever the parameter order or a default spelled out; any real difference, another hash; no
 * seed, no hash (never reused).
 */
import { describe, expect, it } from "vitest";
import { canonicalRequest, requestHash } from "../../src/ledger/request-hash.js";

const PROMPT = "a red fox in snow";

describe("requestHash", () => {
  it("is 64 hex characters for a seeded row", () => {
    expect(requestHash(PROMPT, { seed: 1 })).toMatch(/^[0-9a-f]{64}$/);
  });

  it("ignores the order of the parameters", () => {
    const a = requestHash(PROMPT, {
      seed: 7,
      guidance_scale: 4,
      image_size: "square",
      acceleration_level: "high",
    });
    const b = requestHash(PROMPT, {
      acceleration_level: "high",
      image_size: "square",
      guidance_scale: 4,
      seed: 7,
    });
    expect(a).toBe(b);
  });

  it.each([
    ["image_size", "landscape_4_3"],
    ["num_inference_steps", 30],
    ["guidance_scale", 7.5],
    ["output_format", "png"],
    ["safety_check", true],
  ])("a text-to-image default spelled out (%s = %s) is the same request as leaving it out", (name, value) => {
    expect(requestHash(PROMPT, { seed: 3, [name]: value })).toBe(requestHash(PROMPT, { seed: 3 }));
  });

  it("an absent model is text-to-image", () => {
    expect(requestHash(PROMPT, { seed: 3, model: "text-to-image" })).toBe(requestHash(PROMPT, { seed: 3 }));
  });

  it("acceleration has no documented default: leaving it out is another request", () => {
    expect(requestHash(PROMPT, { seed: 3, acceleration_level: "none" })).not.toBe(
      requestHash(PROMPT, { seed: 3 }),
    );
  });

  it.each([
    ["another seed", { seed: 4 }],
    ["another size", { seed: 3, image_size: "square" }],
    ["another model", { seed: 3, model: "edit", image_sha256: "ab".repeat(32) }],
    ["a negative prompt", { seed: 3, negative_prompt: "blurry" }],
    ["a parameter this code does not know", { seed: 3, sync_mode: true }],
  ])("%s is another request", (_, params) => {
    expect(requestHash(PROMPT, params)).not.toBe(requestHash(PROMPT, { seed: 3 }));
  });

  it("another prompt is another request (the prompt is not trimmed or folded here)", () => {
    expect(requestHash(`${PROMPT}.`, { seed: 3 })).not.toBe(requestHash(PROMPT, { seed: 3 }));
    expect(requestHash(PROMPT.toUpperCase(), { seed: 3 })).not.toBe(requestHash(PROMPT, { seed: 3 }));
  });

  it("a default of text-to-image is not normalised for the other models", () => {
    const base = { seed: 3, model: "image-to-image", image_sha256: "ab".repeat(32) };
    expect(requestHash(PROMPT, { ...base, num_inference_steps: 30 })).not.toBe(requestHash(PROMPT, base));
  });

  it("an edit row's input image is named by its content when known, not by its path or upload URL", () => {
    const sha = "ab".repeat(32);
    const here = { seed: 3, model: "edit", image_path: "/data/a/shoe.png", image_sha256: sha };
    const there = {
      seed: 3,
      model: "edit",
      image_path: "/other/shoe-copy.png",
      image_sha256: sha,
      image_url: "https://upload.example/1",
    };
    expect(requestHash(PROMPT, here)).toBe(requestHash(PROMPT, there));
    expect(requestHash(PROMPT, { ...here, image_sha256: "cd".repeat(32) })).not.toBe(
      requestHash(PROMPT, here),
    );
  });

  it.each([
    ["an edit", "edit", "image_url", "https://img.example/a.png"],
    ["an image-to-image", "image-to-image", "image_url", "https://img.example/a.png"],
    ["an edit", "edit", "image_path", "/data/a.png"],
  ])(
    "%s row whose input image is known only by its %s has no hash: what it serves may change",
    (_label, model, field, value) => {
      const params = { seed: 3, model, [field]: value };
      expect(requestHash(PROMPT, params)).toBeUndefined();
      expect(canonicalRequest(PROMPT, params)).toBeUndefined();
    },
  );

  it("a row without a seed has no hash: its output is random, it is never reused", () => {
    expect(requestHash(PROMPT, {})).toBeUndefined();
    expect(requestHash(PROMPT, { image_size: "square" })).toBeUndefined();
    expect(canonicalRequest(PROMPT, { seed: undefined })).toBeUndefined();
  });

  it("the canonical form is sorted JSON of the model, the prompt and what is not a default", () => {
    expect(canonicalRequest("p", { seed: 1, image_size: "landscape_4_3", guidance_scale: 4 })).toBe(
      '{"guidance_scale":4,"model":"text-to-image","prompt":"p","seed":1}',
    );
  });
});
