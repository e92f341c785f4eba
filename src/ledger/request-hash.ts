import { createHash } from "node:crypto";

/**
 * The canonical effective request of a row, hashed: the key of the deployment's result index
 * (result-index.ts). Two rows with the same hash ask KIE for the same image, so the second may be
 * served from the first one's archived object instead of a new (paid) create.
 *
 * What goes in: the model, the prompt and every parameter the row carries (an unknown parameter
 * included as is: a field this code does not know makes hashes differ, never collide). What is
 * normalised away: parameter order (keys are sorted), values equal to the API's documented
 * text-to-image defaults (an absent `image_size` and `landscape_4_3` are one request), an absent
 * model (text-to-image). An edit or image-to-image row's input image is named by its content
 * (`image_sha256`, a local file read at enqueue): the local path and an uploaded copy's URL say
 * nothing more.
 *
 * A row without a `seed` has no hash: its output is random, so it is never reused. Nor has a row
 * whose input image is only a URL (`image_url` without `image_sha256`): what that URL serves may
 * change, and a new image at the same address must not be answered with the old one's output.
 */

/** Bumped when the canonical form changes: entries under an older version are never read. */
const REQUEST_HASH_VERSION = 1;

/** The API's documented defaults for text-to-image (KIE-API.md). Acceleration's is undocumented. */
const TEXT_TO_IMAGE_DEFAULTS: Readonly<Record<string, unknown>> = {
  image_size: "landscape_4_3",
  num_inference_steps: 30,
  guidance_scale: 7.5,
  output_format: "png",
  safety_check: true,
};

const DEFAULT_MODEL = "text-to-image";

/** Fields that name the input image by location only, dropped when its content hash is there. */
const IMAGE_LOCATIONS = ["image_path", "image_url"] as const;

/** The hash (64 hex) of a row's effective request, or undefined for a row never reused (see above). */
export function requestHash(prompt: string, params: Readonly<Record<string, unknown>>): string | undefined {
  const canonical = canonicalRequest(prompt, params);
  if (canonical === undefined) return undefined;
  return createHash("sha256").update(`v${REQUEST_HASH_VERSION}\n${canonical}`, "utf8").digest("hex");
}

/** The canonical JSON the hash is taken of (exported for tests and for explaining a miss). */
export function canonicalRequest(
  prompt: string,
  params: Readonly<Record<string, unknown>>,
): string | undefined {
  if (typeof params.seed !== "number" || !Number.isFinite(params.seed)) return undefined;
  const model = typeof params.model === "string" && params.model !== "" ? params.model : DEFAULT_MODEL;
  const byContent = typeof params.image_sha256 === "string" && params.image_sha256 !== "";
  // An input image known only by its address: its content is not known, so neither is the request.
  if (!byContent && IMAGE_LOCATIONS.some((name) => params[name] !== undefined && params[name] !== ""))
    return undefined;
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (name === "model") continue;
    if (byContent && (IMAGE_LOCATIONS as readonly string[]).includes(name)) continue;
    if (model === DEFAULT_MODEL && TEXT_TO_IMAGE_DEFAULTS[name] === value) continue;
    fields[name] = value;
  }
  fields.model = model;
  fields.prompt = prompt;
  return stableJson(fields);
}

/** JSON with object keys sorted at every level. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
