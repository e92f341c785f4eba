/** Writes a synthetic CSV manifest of `rows` rows, streaming (a million rows never sit in memory). */

import { once } from "node:events";
import { createWriteStream } from "node:fs";

const SIZES = ["square", "square_hd", "portrait_4_3", "landscape_16_9"] as const;
const ACCELERATIONS = ["none", "regular", "high"] as const;

export async function writeCsvManifest(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("prompt,seed,image_size,acceleration,style\n");
  for (let i = 0; i < rows; i++) {
    const line =
      `"A watercolor painting of a lighthouse at dusk, variation ${i}, soft light, ""wide"" shot",` +
      `${i},${SIZES[i % SIZES.length]},${ACCELERATIONS[i % ACCELERATIONS.length]},style-${i % 7}\n`;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}
