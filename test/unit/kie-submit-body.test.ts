/**
 * The submit body on the wire: a row's local image is known to the worker by its path and
 * sha256, and KIE gets only the upload's URL; the seed's flavour cannot carry an image model.
 */
import { describe, expect, it } from "vitest";
import { submitBody } from "../../src/kie/flavors.js";

const edit = {
  prompt: "the mug on white",
  model: "edit" as const,
  image_url: "https://files.test/mug.png",
  image_path: "/data/manifests/mug.png",
  image_sha256: "ab".repeat(32),
  acceleration_level: "high" as const,
  safety_check: false,
};

describe("submitBody", () => {
  it("the market body sends image_url and never the local path or its sha256", () => {
    const body = submitBody("jobs", edit);
    expect(body).toEqual({
      model: "qwen/image-edit",
      input: {
        prompt: "the mug on white",
        image_url: "https://files.test/mug.png",
        acceleration: "high",
        enable_safety_checker: false,
      },
    });
    expect(body?.input).not.toHaveProperty("image_path");
    expect(body?.input).not.toHaveProperty("image_sha256");
    expect(JSON.stringify(body)).not.toContain("/data/manifests");
    expect(JSON.stringify(body)).not.toContain(edit.image_sha256);
  });

  it("the seed's flavour cannot carry an image model", () => {
    expect(submitBody("qwen", edit)).toBeUndefined();
  });
});
