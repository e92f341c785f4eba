/** Writes a synthetic CSV manifest of `rows` rows, streaming (a million rows never sit in memory). */

import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { createRandom } from "../src/simulator/random.js";

const SIZES = ["square", "square_hd", "portrait_4_3", "landscape_16_9"] as const;
const ACCELERATIONS = ["none", "regular", "high"] as const;
/**
 * Words of image prompts (subjects, places, media, styles, lighting, colours, art terms), about
 * 300: a prompt drawn from them compresses about as well as a real one does. A repeated sentence
 * would compress far better and flatter anything that packs rows together (frozen pages).
 */
const WORDS = `
lighthouse harbour cliff coast ocean sea waves storm clouds sky sunset dusk dawn night moon stars
forest mountain valley river lake waterfall meadow desert island village city street alley market
castle tower bridge ruins temple cathedral garden greenhouse library kitchen studio attic cabin
portrait woman man child girl boy old sailor knight wizard witch dragon fox wolf owl cat dog horse
deer whale raven butterfly robot astronaut samurai monk dancer musician painter fisherman traveler
ship boat train car bicycle balloon lantern candle mirror window door staircase clock book map
flowers roses tulips sunflowers cherry blossoms leaves trees pine oak willow moss fern grass wheat
rain snow fog mist wind fire smoke ice sand stone glass metal wood marble porcelain silk velvet
watercolor oil painting acrylic gouache charcoal pencil sketch ink woodcut etching lithograph
pastel fresco mosaic collage digital illustration concept art matte photograph photography
cinematic film still polaroid analog 35mm 85mm lens macro telephoto wide angle aerial drone
closeup shot panorama isometric view low high eye level bird's-eye symmetrical composition
rule thirds minimalist maximalist surreal abstract realistic hyperrealistic photorealistic
impressionist expressionist cubist baroque renaissance romantic gothic nouveau deco bauhaus
ukiyo-e anime manga cartoon comic pixel vaporwave cyberpunk steampunk solarpunk fantasy sci-fi
retro vintage futuristic medieval victorian modern rustic cozy moody dreamy ethereal whimsical
melancholic serene dramatic epic mysterious haunting peaceful vibrant gloomy nostalgic
soft light golden hour blue volumetric rim backlit diffuse harsh shadows glow neon candlelight
moonlight sunlight overcast dappled chiaroscuro bloom haze reflections highlights
red orange yellow green teal cyan purple violet magenta pink crimson amber ochre emerald
turquoise indigo ivory black white grey silver gold copper bronze muted warm cool
monochrome sepia palette tones colors hues gradient contrast saturated desaturated
detailed intricate highly sharp focus bokeh depth field grain texture brushstrokes
octane render unreal engine trending artstation 4k 8k masterpiece award winning
by the in of with and on at under over near behind through beneath
`
  .trim()
  .split(/\s+/);

export interface ManifestOptions {
  /**
   * Every prompt exactly this many characters, `Lighthouse <i>:` then words drawn per row (distinct
   * rows, distinct words); unset: the historic ~80-char prompt.
   */
  promptLength?: number;
}

/** The prompt of row `i` (unquoted). */
export function promptOf(i: number, length: number | undefined): string {
  if (length === undefined)
    return `A watercolor painting of a lighthouse at dusk, variation ${i}, soft light, "wide" shot`;
  // Seeded by i (spread by the golden-ratio constant): each row its own word sequence.
  // mulberry32, seeded per row: row `i`'s prompt is the same in every run.
  const random = createRandom(Math.imul(i + 1, 0x9e3779b9)).next;
  let text = `Lighthouse ${i}:`;
  while (text.length < length) {
    text += ` ${WORDS[Math.floor(random() * WORDS.length)]!}`;
    if (random() < 0.15) text += ",";
  }
  text = text.slice(0, length);
  // A cut between two words would leave a trailing space or comma, which no real prompt ends with.
  return /[ ,]$/.test(text) ? `${text.slice(0, -1)}s` : text;
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
