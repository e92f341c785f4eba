/**
 * Spots a column that looks like a misspelt parameter (`image-size`, `steps`, `Image Size`), so
 * the user is warned that it is being carried as metadata instead of sent to the API.
 * Names are compared after normalising case and separators, first against a table of common
 * lookalikes, then by edit distance (at most 1 for short names, 2 for longer ones).
 */

import { PARAM_ALIASES, ROW_PARAM_NAMES } from "./params.js";

/** Names a row field can have that are not metadata. */
const KNOWN_NAMES: readonly string[] = ["prompt", "id", ...ROW_PARAM_NAMES, ...Object.keys(PARAM_ALIASES)];

/** Normalised lookalike -> the name it probably meant. Checked before the edit distance. */
const LOOKALIKES: Readonly<Record<string, string>> = {
  steps: "num_inference_steps",
  step: "num_inference_steps",
  numsteps: "num_inference_steps",
  inferencesteps: "num_inference_steps",
  guidance: "guidance_scale",
  cfg: "guidance_scale",
  cfgscale: "guidance_scale",
  scale: "guidance_scale",
  negative: "negative_prompt",
  neg: "negative_prompt",
  negprompt: "negative_prompt",
  accel: "acceleration_level",
  speed: "acceleration_level",
  format: "output_format",
  fileformat: "output_format",
  safety: "safety_check",
  safetychecker: "safety_check",
  nsfw: "safety_check",
  size: "image_size",
  aspect: "image_size",
  aspectratio: "image_size",
  rowid: "id",
};

const KNOWN = new Set(KNOWN_NAMES);
const NORMALISED = KNOWN_NAMES.map((name) => ({ name, normal: normaliseName(name) }));
const cache = new Map<string, string | undefined>();
const CACHE_MAX = 1000;

/** Lower case, without spaces, underscores, hyphens and dots: "Image Size" -> "imagesize". */
function normaliseName(name: string): string {
  return name.toLowerCase().replace(/[\s_.-]+/g, "");
}

/** The parameter (or `prompt`/`id`) a non-parameter name probably meant, or undefined. */
export function suggestParameter(name: string): string | undefined {
  if (KNOWN.has(name)) return undefined;
  if (cache.has(name)) return cache.get(name);
  const suggestion = findSuggestion(normaliseName(name));
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(name, suggestion);
  return suggestion;
}

/** The warning for a metadata column that looks like a parameter, or undefined. No line: dedupe by text. */
export function misspellingWarning(name: string): string | undefined {
  const meant = suggestParameter(name);
  if (meant === undefined) return undefined;
  return `"${name}" is not a parameter and is kept as metadata; did you mean "${meant}"?`;
}

function findSuggestion(normal: string): string | undefined {
  if (normal === "") return undefined;
  const lookalike = LOOKALIKES[normal];
  if (lookalike !== undefined) return lookalike;
  let best: { name: string; distance: number } | undefined;
  for (const known of NORMALISED) {
    const limit = known.normal.length >= 6 ? 2 : known.normal.length >= 4 ? 1 : 0;
    const distance = levenshtein(normal, known.normal, limit);
    if (distance <= limit && (best === undefined || distance < best.distance)) {
      best = { name: known.name, distance };
    }
  }
  return best?.name;
}

/** Edit distance, giving up (returning limit + 1) once it must exceed `limit`. */
function levenshtein(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  // Optimal string alignment: two adjacent letters swapped ("modle" for "model") count as one edit.
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let previousMin = 0;
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, beforePrevious[j - 2]! + 1);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    // A swap reaches back two rows: stop only when neither row can still lead within the limit.
    if (Math.min(rowMin, previousMin + 1) > limit) return limit + 1;
    beforePrevious = previous;
    previous = current;
    previousMin = rowMin;
  }
  return previous[b.length]!;
}
