import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { openManifest } from "../manifest/index.js";

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples");
/** The sample manifest shipped with the project: a dozen varied prompts, Chinese and English. */
const SAMPLE_MANIFEST = join(EXAMPLES, "prompts.csv");
/** The editing sample: image-to-image and edit rows over the small images in examples/images/. */
export const EDIT_SAMPLE_MANIFEST = join(EXAMPLES, "edit.csv");

/**
 * A manifest of `rows` rows made from the sample: the sample itself when `rows` is its size,
 * else its rows cycled with a fresh `seed` and id per copy (so each is a new image), written as
 * JSONL to `path`.
 */
export async function sampleManifest(rows: number, path: string): Promise<string> {
  const manifest = await openManifest(SAMPLE_MANIFEST);
  const sample: Record<string, unknown>[] = [];
  for await (const raw of manifest.rows()) sample.push(raw.fields);
  if (rows === sample.length) return SAMPLE_MANIFEST;
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  for (let i = 0; i < rows; i++) {
    const base = sample[i % sample.length]!;
    const copy = Math.floor(i / sample.length);
    const row =
      copy === 0 ? base : { ...base, id: `${String(base.id)}-${copy + 1}`, seed: String(1000 * copy + i) };
    if (!out.write(`${JSON.stringify(row)}\n`))
      await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  out.end();
  await finished(out);
  return path;
}
