/**
 * An input image's URL as results, sidecars and the dashboard show it: a presigned URL's
 * signature and credentials are secrets (KIE gets the URL whole; nobody else needs them).
 */
import { describe, expect, it } from "vitest";
import { maskUrlCredentials, shownParams } from "../../src/core/redact-url.js";
import { parseGalleryQuery } from "../../src/dashboard/gallery.js";
import { renderRowPage } from "../../src/dashboard/row-page.js";
import { sourceImageOf } from "../../src/kie/index.js";
import { rowRecord } from "../helpers/stage-fakes.js";

const PRESIGNED =
  "https://bucket.s3.amazonaws.com/in/shoe.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261206&X-Amz-Signature=SIGSECRET";

describe("an input image URL as shown", () => {
  it("masks a presigned URL's credential and signature, keeping the rest", () => {
    const shown = maskUrlCredentials(PRESIGNED);
    expect(shown).not.toMatch(/SIGSECRET|AKIAEXAMPLE/);
    expect(shown).toContain("https://bucket.s3.amazonaws.com/in/shoe.png?");
    expect(shown).toContain("X-Amz-Algorithm=AWS4-HMAC-SHA256");
  });

  it("leaves a URL without credentials exactly as given", () => {
    for (const url of [
      "https://cdn.example.com/a/",
      "https://cdn.example.com/a%20b.png?w=512",
      "http://x/y",
    ]) {
      expect(maskUrlCredentials(url)).toBe(url);
    }
  });

  it("in a row's parameters, its source image, and its dashboard page", () => {
    const params = { model: "image-to-image", image_url: PRESIGNED, strength: 0.6 };
    expect(shownParams(params)).toEqual({ ...params, image_url: maskUrlCredentials(PRESIGNED) });
    expect(params.image_url).toBe(PRESIGNED);
    expect(sourceImageOf(params)?.url).toBe(maskUrlCredentials(PRESIGNED));
    const plain = { image_url: "https://cdn.example.com/a.png" };
    expect(shownParams(plain)).toBe(plain);

    const page = renderRowPage({
      row: rowRecord({ params }),
      query: parseGalleryQuery({}),
      previous: null,
      next: null,
      csrf: null,
    });
    expect(page).toContain("bucket.s3.amazonaws.com/in/shoe.png");
    expect(page).not.toMatch(/SIGSECRET|AKIAEXAMPLE/);
  });
});
