/**
 * The API parameters a row may give, their aliases and their zod schema. `parseParamLayer`
 * validates one layer of precedence (a row, the `--set` options, or the file's defaults) and
 * returns every problem at once, named as the user wrote the field.
 */

import { z } from "zod";
import {
  ACCELERATION_LEVELS,
  type GenerationParams,
  IMAGE_SIZES,
  KIE_MODELS,
  type KieModel,
  LIMITS,
  MARKET_PARAM_NAMES,
  OUTPUT_FORMATS,
  type OutputFormat,
  PARAM_NAMES,
} from "../kie/types.js";
import { setOwn } from "./types.js";
import {
  isGiven,
  type Parsed,
  parseBoolean,
  parseEnum,
  parseHttpUrl,
  parseNumber,
  parsePath,
  parseText,
} from "./values.js";

/** Every parameter except `prompt` (which is required per row and never has a default). */
export type ParamOverrides = Omit<GenerationParams, "prompt">;
export type ParamName = Exclude<keyof ParamOverrides, "image_sha256">;

/** What a row may give besides `prompt` and `id`: the wire parameters, the mode and a local image. */
export const ROW_PARAM_NAMES: readonly ParamName[] = [...PARAM_NAMES, "model", "image_path"];

/** Other spellings of a model (the market API's names among them). */
const MODEL_ALIASES: Readonly<Record<string, KieModel>> = {
  "qwen/text-to-image": "text-to-image",
  "qwen/image-to-image": "image-to-image",
  "qwen/image-edit": "edit",
  "image-edit": "edit",
};

/** Other accepted names of a parameter (the market API's names). */
export const PARAM_ALIASES: Readonly<Record<string, ParamName>> = Object.fromEntries(
  Object.entries(MARKET_PARAM_NAMES).map(([ours, market]) => [market, ours as ParamName]),
);

const OUTPUT_FORMAT_ALIASES: Readonly<Record<string, OutputFormat>> = { jpeg: "jpg" };

/**
 * Applied under everything else (row, `--set`, file defaults). Deliberately empty: the API has
 * its own defaults (landscape_4_3, 30 steps, guidance 7.5, png, safety on), and sending only what
 * the user gave keeps requests and row ids stable if those ever change. Put a value here only if
 * this tool must choose differently from the API.
 */
export const BUILT_IN_DEFAULTS: Readonly<ParamOverrides> = Object.freeze({});

/** A zod field over any input (CSV string, JSON value) that applies one strict value rule. */
function field<T>(parse: (input: unknown) => Parsed<T>) {
  return z.unknown().transform((input, ctx): T => {
    const result = parse(input);
    if (result.ok) return result.value;
    ctx.issues.push({ code: "custom", message: result.message, input });
    return z.NEVER;
  });
}

const PARAMS_SCHEMA = z.strictObject({
  image_size: field((v) => parseEnum(v, IMAGE_SIZES)).optional(),
  num_inference_steps: field((v) =>
    parseNumber(v, { min: LIMITS.stepsMin, max: LIMITS.stepsMax, integer: true }),
  ).optional(),
  guidance_scale: field((v) =>
    parseNumber(v, { min: LIMITS.guidanceMin, max: LIMITS.guidanceMax, integer: false }),
  ).optional(),
  seed: field((v) => parseNumber(v, { min: LIMITS.seedMin, max: LIMITS.seedMax, integer: true })).optional(),
  acceleration_level: field((v) => parseEnum(v, ACCELERATION_LEVELS)).optional(),
  output_format: field((v) => parseEnum(v, OUTPUT_FORMATS, OUTPUT_FORMAT_ALIASES)).optional(),
  safety_check: field(parseBoolean).optional(),
  negative_prompt: field((v) =>
    parseText(v, { max: LIMITS.negativePromptMaxChars, required: false }),
  ).optional(),
  model: field((v) => parseEnum(v, KIE_MODELS, MODEL_ALIASES)).optional(),
  image_url: field(parseHttpUrl).optional(),
  strength: field((v) =>
    parseNumber(v, { min: LIMITS.strengthMin, max: LIMITS.strengthMax, integer: false }),
  ).optional(),
  image_path: field(parsePath).optional(),
});

export interface FieldProblem {
  /** The field as the user wrote it. */
  field: string;
  message: string;
}

export interface ParamLayer {
  /** The parameters this layer gives, validated; absent keys were not given. */
  params: ParamOverrides;
  /** Every invalid parameter value, and any parameter given under two names. */
  problems: FieldProblem[];
  /** Fields that are not parameters (`prompt`, `id`, metadata), as given. */
  rest: Record<string, unknown>;
}

/** The canonical name of a parameter field (an alias resolved), or undefined if not a parameter. */
export function canonicalParamName(name: string): ParamName | undefined {
  return (ROW_PARAM_NAMES as readonly string[]).includes(name) ? (name as ParamName) : PARAM_ALIASES[name];
}

/** Validates the parameters among `fields`; empty values and nulls are "not given" and skipped. */
export function parseParamLayer(fields: Readonly<Record<string, unknown>>): ParamLayer {
  const given: Record<string, unknown> = {};
  const spelling = new Map<ParamName, string>();
  const problems: FieldProblem[] = [];
  const rest: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const canonical = canonicalParamName(name);
    if (canonical === undefined) {
      setOwn(rest, name, value);
      continue;
    }
    if (!isGiven(value)) continue;
    const earlier = spelling.get(canonical);
    if (earlier !== undefined) {
      problems.push({ field: name, message: `expected one of "${earlier}" and "${name}", found both` });
      continue;
    }
    spelling.set(canonical, name);
    given[canonical] = value;
  }
  const result = PARAMS_SCHEMA.safeParse(given);
  const params: Record<string, unknown> = {};
  if (result.success) {
    for (const [name, value] of Object.entries(result.data)) if (value !== undefined) params[name] = value;
  } else {
    for (const issue of result.error.issues) {
      const canonical = String(issue.path[0] ?? "row") as ParamName;
      problems.push({ field: spelling.get(canonical) ?? canonical, message: issue.message });
    }
  }
  return { params: params as ParamOverrides, problems, rest };
}
