/** Writes a synthetic CSV manifest of `rows` rows, streaming (a million rows never sit in memory). */

import { once } from "node:events";
import { createWriteStream } from "node:fs";

const SIZES = ["square", "square_hd", "portrait_4_3", "landscape_16_9"] as const;
const ACCELERATIONS = ["none", "regular", "high"] as const;
const FILLER =
  " soft light over the harbour, wide shot, oil on canvas, muted palette, gulls in the distance, waves";

export interface ManifestOptions {
  /** Every prompt exactly this many characters (distinct per row); unset: the historic ~80-char prompt. */
  promptLength?: number;
}

/** The prompt of row `i` (unquoted). */
export function promptOf(i: number, length: number | undefined): string {
  if (length === undefined)
    return `A watercolor painting of a lighthouse at dusk, variation ${i}, soft light, "wide" shot`;
  let text = `Lighthouse ${i}:`;
  while (text.length < length) text += FILLER;
  return text.slice(0, length);
}

/** Row `i`'s generation parameters, as the API takes them (the plain-BullMQ baseline sends these). */
export function rowParams(i: number, options: ManifestOptions = {}): Record<string, string | number> {
  return {
    prompt: promptOf(i, options.promptLength),
    seed: i,
    image_size: SIZES[i % SIZES.length]!,
    acceleration_level: ACCELERATIONS[i % ACCELERATIONS.length]!,
  };
}

export async function writeCsvManifest(
  path: string,
  rows: number,
  options: ManifestOptions = {},
): Promise<void> {
  const out = createWriteStream(path);
  out.write("prompt,seed,image_size,acceleration,style\n");
  for (let i = 0; i < rows; i++) {
    const line =
      `"${promptOf(i, options.promptLength).replaceAll('"', '""')}",` +
      `${i},${SIZES[i % SIZES.length]},${ACCELERATIONS[i % ACCELERATIONS.length]},style-${i % 7}\n`;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}
