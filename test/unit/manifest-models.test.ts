import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_PRICES, parsePriceOverrides, priceOf } from "../../src/kie/prices.js";
import { formatRowError, type RowContext, type RowResult, validateRow } from "../../src/manifest/index.js";

const root = mkdtempSync(join(tmpdir(), "kie-models-"));
const manifestDir = join(root, "manifests");
const outside = join(root, "elsewhere");
mkdirSync(manifestDir);
mkdirSync(outside);
const PNG = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.from("a small png body")]);
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
writeFileSync(join(manifestDir, "shoe.png"), PNG);
writeFileSync(join(manifestDir, "shoe-copy.png"), PNG);
writeFileSync(join(manifestDir, "bag.jpg"), JPEG);
writeFileSync(join(manifestDir, "notes.txt"), "not an image");
writeFileSync(join(outside, "hat.png"), PNG);
symlinkSync(join(outside, "hat.png"), join(manifestDir, "link-to-hat.png"));
writeFileSync(join(manifestDir, "huge.png"), Buffer.concat([PNG, Buffer.alloc(10 * 1024 * 1024)]));
const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

afterAll(() => rmSync(root, { recursive: true, force: true }));

const file = "batch.csv";
function check(fields: Record<string, unknown>, context: Partial<RowContext> = {}): RowResult {
  return validateRow({ line: 4, fields }, { file, baseDir: manifestDir, ...context });
}
function errors(fields: Record<string, unknown>, context: Partial<RowContext> = {}): string[] {
  const result = check(fields, context);
  return result.ok ? [] : result.errors.map(formatRowError);
}
function row(fields: Record<string, unknown>, context: Partial<RowContext> = {}) {
  const result = check(fields, context);
  if (!result.ok) throw new Error(result.errors.map(formatRowError).join("\n"));
  return result.row;
}

describe("validation per model", () => {
  it.each([
    [
      "an image model without an image",
      { prompt: "make it blue", model: "edit" },
      'batch.csv:4: image_url: expected image_url or image_path for model "edit", found neither',
    ],
    [
      "both kinds of image",
      { prompt: "make it blue", model: "edit", image_url: "https://x.test/a.png", image_path: "shoe.png" },
      'batch.csv:4: image_path: expected one of "image_url" and "image_path", found both',
    ],
    [
      "text-to-image with an image",
      { prompt: "a shoe", image_url: "https://x.test/a.png" },
      'batch.csv:4: image_url: model "text-to-image" takes no input image (set model to image-to-image or edit)',
    ],
    [
      "an edit prompt over 2000 characters",
      { prompt: "x".repeat(2001), model: "edit", image_url: "https://x.test/a.png" },
      'batch.csv:4: prompt: expected at most 2000 characters for model "edit", found 2001',
    ],
    [
      "an image-to-image prompt over 5000 characters",
      { prompt: "x".repeat(5001), model: "image-to-image", image_url: "https://x.test/a.png" },
      "batch.csv:4: prompt: expected at most 5000 characters, found 5001",
    ],
    [
      "strength out of range",
      { prompt: "redo", model: "image-to-image", image_url: "https://x.test/a.png", strength: "1.5" },
      'batch.csv:4: strength: expected a number from 0 to 1, found "1.5"',
    ],
    [
      "strength on edit",
      { prompt: "redo", model: "edit", image_url: "https://x.test/a.png", strength: "0.5" },
      'batch.csv:4: strength: strength applies only to model "image-to-image", not model "edit"',
    ],
    [
      "a URL that is not http(s)",
      { prompt: "redo", model: "edit", image_url: "file:///etc/passwd" },
      'batch.csv:4: image_url: expected an http(s) URL, found "file:///etc/passwd"',
    ],
    [
      "a missing file",
      { prompt: "redo", model: "edit", image_path: "gone.png" },
      'batch.csv:4: image_path: cannot read "gone.png": no such file',
    ],
    [
      "a file that is no image",
      { prompt: "redo", model: "edit", image_path: "notes.txt" },
      "batch.csv:4: image_path: expected a PNG, JPEG or WebP image, found another kind of file",
    ],
    [
      "a file too large",
      { prompt: "redo", model: "edit", image_path: "huge.png" },
      `batch.csv:4: image_path: expected an image of at most 10485760 bytes, found ${PNG.length + 10 * 1024 * 1024} bytes`,
    ],
    [
      "a path outside the manifest's folder",
      { prompt: "redo", model: "edit", image_path: "../elsewhere/hat.png" },
      'batch.csv:4: image_path: "../elsewhere/hat.png" is outside the manifest\'s folder (name its folder with --allow-paths to use it)',
    ],
    [
      "a symlink leading outside",
      { prompt: "redo", model: "edit", image_path: "link-to-hat.png" },
      'batch.csv:4: image_path: "link-to-hat.png" is outside the manifest\'s folder (name its folder with --allow-paths to use it)',
    ],
    [
      "an unknown model",
      { prompt: "redo", model: "inpaint" },
      'batch.csv:4: model: expected one of text-to-image, image-to-image, edit, found "inpaint"',
    ],
  ])("%s", (_name, fields, message) => {
    expect(errors(fields)).toEqual([message]);
  });

  describe("a value shared by every row (--set, the file's defaults) goes only to the models that take it", () => {
    const url = "https://x.test/a.png";
    const mixed = [
      { prompt: "a shoe" },
      { prompt: "redo", model: "image-to-image", image_url: url },
      { prompt: "redo", model: "edit", image_url: url },
    ];

    it("--set image_size: kept for text-to-image and edit, not sent for image-to-image", () => {
      const sizes = mixed.map(
        (fields) => row(fields, { sets: { image_size: "square_hd" } }).params.image_size,
      );
      expect(sizes).toEqual(["square_hd", undefined, "square_hd"]);
    });

    it("a default strength: kept for image-to-image, not sent for the others", () => {
      const strengths = mixed.map((fields) => row(fields, { defaults: { strength: 0.4 } }).params.strength);
      expect(strengths).toEqual([undefined, 0.4, undefined]);
    });

    it("a shared image_url is not sent for text-to-image", () => {
      const r = row({ prompt: "a shoe" }, { sets: { image_url: url } });
      expect(r.params.image_url).toBeUndefined();
      expect(r.id).toBe(row({ prompt: "a shoe" }).id);
    });

    it("the row's own field is still refused, with the usual message", () => {
      expect(
        errors(
          { prompt: "redo", model: "image-to-image", image_url: url, image_size: "square" },
          { sets: { image_size: "square_hd" } },
        ),
      ).toEqual(['batch.csv:4: image_size: image_size does not apply to model "image-to-image"']);
      expect(
        errors(
          { prompt: "redo", model: "edit", image_url: url, strength: "0.5" },
          { defaults: { strength: 0.4 } },
        ),
      ).toEqual(['batch.csv:4: strength: strength applies only to model "image-to-image", not model "edit"']);
      expect(errors({ prompt: "a shoe", image_url: url })).toEqual([
        'batch.csv:4: image_url: model "text-to-image" takes no input image (set model to image-to-image or edit)',
      ]);
    });
  });

  it("a market-only model on a deployment set to the seed's qwen endpoints is refused with the fix", () => {
    expect(
      errors(
        { prompt: "redo", model: "image-to-image", image_url: "https://x.test/a.png" },
        { apiFlavor: "qwen" },
      ),
    ).toEqual([
      "batch.csv:4: model: model \"image-to-image\" needs KIE's market API: set KIE_API_FLAVOR=jobs (this deployment speaks the seed's qwen endpoints, which only do text-to-image)",
    ]);
    expect(errors({ prompt: "a shoe" }, { apiFlavor: "qwen" })).toEqual([]);
  });

  it("--allow-paths admits a folder outside the manifest's", () => {
    const r = row(
      { prompt: "redo", model: "edit", image_path: "../elsewhere/hat.png" },
      { allowPaths: [outside] },
    );
    expect(r.params.image_sha256).toBe(sha(PNG));
  });

  it("a local image is stored by real path and sha256; model names and the market's are accepted", () => {
    const r = row({ prompt: "on white", model: "qwen/image-edit", image_path: "bag.jpg" });
    expect(r.params).toEqual({
      prompt: "on white",
      model: "edit",
      image_path: join(manifestDir, "bag.jpg"),
      image_sha256: sha(JPEG),
    });
  });

  it("text-to-image named explicitly is the default: same params, same id", () => {
    expect(row({ prompt: "a shoe", model: "text-to-image" })).toMatchObject({
      id: row({ prompt: "a shoe" }).id,
      params: { prompt: "a shoe" },
    });
  });
});

describe("row ids cover the input image", () => {
  const edit = (extra: Record<string, unknown>) => row({ prompt: "on white", model: "edit", ...extra }).id;

  it("one prompt over different images is different rows", () => {
    expect(edit({ image_path: "shoe.png" })).not.toBe(edit({ image_path: "bag.jpg" }));
    expect(edit({ image_url: "https://x.test/1.png" })).not.toBe(edit({ image_url: "https://x.test/2.png" }));
  });

  it("the same bytes under another name, or from a moved folder, is the same row", () => {
    expect(edit({ image_path: "shoe.png" })).toBe(edit({ image_path: "shoe-copy.png" }));
    expect(edit({ image_path: "shoe.png" })).toBe(edit({ image_path: join(manifestDir, "shoe.png") }));
  });

  it("the model is part of the id", () => {
    const url = "https://x.test/1.png";
    expect(edit({ image_url: url })).not.toBe(
      row({ prompt: "on white", model: "image-to-image", image_url: url }).id,
    );
  });

  it("a row's own image replaces a --set image of the other kind", () => {
    const r = row(
      { prompt: "on white", image_path: "shoe.png" },
      { sets: { model: "edit", image_url: "https://x.test/default.png" } },
    );
    expect(r.params.image_url).toBeUndefined();
    expect(r.params.image_sha256).toBe(sha(PNG));
  });
});

describe("prices per model and acceleration", () => {
  it.each([
    ["text-to-image", "high", 6],
    ["text-to-image", undefined, 8],
    ["image-to-image", "regular", 9],
    ["image-to-image", undefined, 10],
    ["edit", "high", 10],
    ["edit", undefined, 12],
  ] as const)("%s at %s costs %i by default", (model, acceleration, credits) => {
    expect(priceOf(DEFAULT_PRICES, { model, acceleration_level: acceleration })).toBe(credits);
  });

  it("the estimate of a row uses its model's price, and overrides replace it", () => {
    const fields = {
      prompt: "on white",
      model: "edit",
      image_url: "https://x.test/1.png",
      acceleration: "high",
    };
    expect(row(fields).estimatedCredits).toBe(10);
    const prices = parsePriceOverrides("edit=3,image-to-image:high=2");
    expect(row(fields, { prices }).estimatedCredits).toBe(3);
    expect(priceOf(prices, { model: "image-to-image", acceleration_level: "high" })).toBe(2);
    // An unknown acceleration is estimated at the dearest known price of the model.
    expect(priceOf(prices, { model: "image-to-image" })).toBe(10);
  });

  it.each(["edit", "edit=0", "inpaint=3", "edit:turbo=3", "edit=abc", "edit=99999"])(
    "refuses the override %j",
    (text) => {
      expect(() => parsePriceOverrides(text)).toThrow(/Invalid KIE_PRICES entry/);
    },
  );
});
