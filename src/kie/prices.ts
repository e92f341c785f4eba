/**
 * Credits an image costs, per model and acceleration: the one table the estimate and the budget
 * reservation read (a row reserves its estimate; manifest/ids.ts computes it from here).
 *
 * Only text-to-image's prices come from the seed (none 8, regular 7, high 6). KIE publishes no
 * price for image-to-image and edit here, so their defaults are deliberately above
 * text-to-image's: a budget must never be exceeded because a guess was low. `KIE_PRICES`
 * replaces any of them once the account's real prices are known.
 */
import { ValueError } from "../core/errors.js";
import {
  ACCELERATION_LEVELS,
  type AccelerationLevel,
  CREDITS_BY_ACCELERATION,
  KIE_MODELS,
  type KieModel,
} from "./types.js";

export type PriceTable = Readonly<Record<KieModel, Readonly<Record<AccelerationLevel, number>>>>;

export const DEFAULT_PRICES: PriceTable = {
  "text-to-image": CREDITS_BY_ACCELERATION,
  "image-to-image": { none: 10, regular: 9, high: 8 },
  edit: { none: 12, regular: 11, high: 10 },
};

/** Largest price one image may be given (a typo like 80000 is refused rather than budgeted). */
const MAX_PRICE = 10_000;

/**
 * The credits one image of `params` costs: its model's price at its acceleration, or the dearest
 * price of its model when it names no acceleration (the API's default is undocumented).
 */
export function priceOf(
  table: PriceTable,
  params: { model?: KieModel | undefined; acceleration_level?: AccelerationLevel | undefined },
): number {
  const prices = table[params.model ?? "text-to-image"];
  const level = params.acceleration_level;
  return level === undefined ? Math.max(...Object.values(prices)) : prices[level];
}

/**
 * `KIE_PRICES`: comma-separated `model=credits` (every acceleration of the model) or
 * `model:acceleration=credits`, applied over DEFAULT_PRICES in order, e.g.
 * `edit=5,image-to-image:high=3`. Throws ValueError (option `KIE_PRICES`) naming the bad entry.
 */
export function parsePriceOverrides(text: string, base: PriceTable = DEFAULT_PRICES): PriceTable {
  const table = Object.fromEntries(KIE_MODELS.map((model) => [model, { ...base[model] }])) as Record<
    KieModel,
    Record<AccelerationLevel, number>
  >;
  for (const entry of text.split(",").map((part) => part.trim())) {
    if (entry === "") continue;
    const match = /^([a-z-]+)(?::([a-z]+))?=(\d+(?:\.\d+)?)$/.exec(entry);
    const model = match?.[1] as KieModel | undefined;
    const level = match?.[2] as AccelerationLevel | undefined;
    const credits = Number(match?.[3]);
    if (
      !match ||
      !(KIE_MODELS as readonly string[]).includes(model!) ||
      (level !== undefined && !(ACCELERATION_LEVELS as readonly string[]).includes(level)) ||
      !(credits > 0 && credits <= MAX_PRICE)
    ) {
      throw new ValueError(
        "KIE_PRICES",
        `Invalid KIE_PRICES entry ${JSON.stringify(entry)}: expected model=credits or model:acceleration=credits ` +
          `(models ${KIE_MODELS.join(", ")}; accelerations ${ACCELERATION_LEVELS.join(", ")}; credits above 0, at most ${MAX_PRICE})`,
      );
    }
    for (const each of level === undefined ? ACCELERATION_LEVELS : [level]) table[model!][each] = credits;
  }
  return table;
}
