/**
 * Create-request validation for both flavours. Everything is normalised to the seed's (qwen)
 * parameter names, so a task, its request hash and its image do not depend on the flavour used.
 */
import { createHash } from "node:crypto";
import {
  ACCELERATION_LEVELS,
  type GenerationParams,
  IMAGE_SIZES,
  KIE_MODELS,
  type KieModel,
  LIMITS,
  MARKET_MODELS,
  OUTPUT_FORMATS,
} from "../kie/types.js";

/** The market models by their wire names. */
const MODELS_BY_MARKET_NAME: ReadonlyMap<string, KieModel> = new Map(
  KIE_MODELS.map((model) => [MARKET_MODELS[model], model]),
);

interface ParsedCreate {
  params: GenerationParams;
  callBackUrl?: string;
}

export type ParseResult = { ok: true; value: ParsedCreate } | { ok: false; msg: string };

type Body = Record<string, unknown>;

/** Thrown inside this module only; turned into `{ ok: false }` at the two entry points. */
class Invalid extends Error {}

function isObject(value: unknown): value is Body {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `POST /api/v1/qwen/generate`: flat seed names; market names are unknown here and ignored. */
export function parseQwenCreate(body: unknown): ParseResult {
  if (!isObject(body)) return { ok: false, msg: "request body must be a JSON object" };
  return guarded(() => readParams(body, body, false));
}

/** `POST /api/v1/jobs/createTask`: `{model, input: {...}, callBackUrl}`; market names accepted too. */
export function parseJobsCreate(body: unknown): ParseResult {
  if (!isObject(body)) return { ok: false, msg: "request body must be a JSON object" };
  const model = typeof body.model === "string" ? MODELS_BY_MARKET_NAME.get(body.model) : undefined;
  if (model === undefined) {
    const names = [...MODELS_BY_MARKET_NAME.keys()].map((name) => `"${name}"`).join(", ");
    return { ok: false, msg: `model must be one of ${names} (got ${JSON.stringify(body.model ?? null)})` };
  }
  if (!isObject(body.input)) return { ok: false, msg: "input must be a JSON object" };
  const input = body.input;
  return guarded(() => {
    const parsed = readParams(input, body, true, model);
    if (model !== "text-to-image") readImageParams(input, parsed.params, model);
    return parsed;
  });
}

/** image-to-image and edit: a fetchable `image_url` (required); `strength` 0-1 is image-to-image's. */
function readImageParams(input: Body, params: GenerationParams, model: KieModel): void {
  params.model = model;
  const url = input.image_url;
  if (typeof url !== "string" || !/^https?:\/\//i.test(url))
    throw new Invalid("image_url is required (an http(s) URL)");
  params.image_url = url;
  if (model === "image-to-image" && input.strength !== undefined) {
    const strength = input.strength;
    if (typeof strength !== "number" || strength < LIMITS.strengthMin || strength > LIMITS.strengthMax) {
      throw new Invalid(`strength must be a number from ${LIMITS.strengthMin} to ${LIMITS.strengthMax}`);
    }
    params.strength = strength;
  }
}

function guarded(read: () => ParsedCreate): ParseResult {
  try {
    return { ok: true, value: read() };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, msg: error.message };
    throw error;
  }
}

function readParams(input: Body, envelope: Body, market: boolean, model?: KieModel): ParsedCreate {
  const max = model === "edit" ? LIMITS.editPromptMaxChars : LIMITS.promptMaxChars;
  const params: GenerationParams = { prompt: readPrompt(input.prompt, max) };

  const size = input.image_size;
  if (size !== undefined) params.image_size = oneOf(size, IMAGE_SIZES, "image_size");

  const steps = input.num_inference_steps;
  if (steps !== undefined) {
    params.num_inference_steps = integerIn(steps, LIMITS.stepsMin, LIMITS.stepsMax, "num_inference_steps");
  }

  const guidance = input.guidance_scale;
  if (guidance !== undefined) {
    if (typeof guidance !== "number" || guidance < LIMITS.guidanceMin || guidance > LIMITS.guidanceMax) {
      throw new Invalid(
        `guidance_scale must be a number from ${LIMITS.guidanceMin} to ${LIMITS.guidanceMax}`,
      );
    }
    params.guidance_scale = guidance;
  }

  if (input.seed !== undefined) params.seed = integerIn(input.seed, LIMITS.seedMin, LIMITS.seedMax, "seed");

  const acceleration = aliased(input, "acceleration_level", market ? "acceleration" : undefined);
  if (acceleration !== undefined) {
    params.acceleration_level = oneOf(acceleration, ACCELERATION_LEVELS, "acceleration_level");
  }

  const format = input.output_format;
  if (format !== undefined) {
    // The market docs spell it "jpeg"; it is the same file as the seed's "jpg".
    const allowed = market ? ([...OUTPUT_FORMATS, "jpeg"] as const) : OUTPUT_FORMATS;
    const value = oneOf(format, allowed, "output_format");
    params.output_format = value === "jpeg" ? "jpg" : value;
  }

  const safety = aliased(input, "safety_check", market ? "enable_safety_checker" : undefined);
  if (safety !== undefined) {
    if (typeof safety !== "boolean") throw new Invalid("safety_check must be a boolean");
    params.safety_check = safety;
  }

  const negative = input.negative_prompt;
  if (negative !== undefined) {
    if (typeof negative !== "string" || codePoints(negative) > LIMITS.negativePromptMaxChars) {
      throw new Invalid(
        `negative_prompt must be a string of at most ${LIMITS.negativePromptMaxChars} characters`,
      );
    }
    params.negative_prompt = negative;
  }

  const parsed: ParsedCreate = { params };
  const callBackUrl = envelope.callBackUrl ?? input.callBackUrl;
  if (callBackUrl !== undefined && callBackUrl !== null && callBackUrl !== "") {
    parsed.callBackUrl = readCallbackUrl(callBackUrl);
  }
  return parsed;
}

function readPrompt(prompt: unknown, max: number): string {
  if (typeof prompt !== "string" || prompt.length === 0) throw new Invalid("prompt is required");
  // The limit is in characters as a user counts them: code points, not UTF-16 units.
  if (codePoints(prompt) > max) throw new Invalid(`prompt must be at most ${max} characters`);
  return prompt;
}

function readCallbackUrl(value: unknown): string {
  if (typeof value === "string") {
    try {
      const url = new URL(value);
      if (url.protocol === "http:" || url.protocol === "https:") return value;
    } catch {
      // falls through to the error below
    }
  }
  throw new Invalid("callBackUrl must be an http(s) URL");
}

/** Reads a field that has a second (market) name; both present and different is an error. */
function aliased(input: Body, name: string, alias: string | undefined): unknown {
  const value = input[name];
  if (alias === undefined) return value;
  const other = input[alias];
  if (value !== undefined && other !== undefined && value !== other) {
    throw new Invalid(`${name} and ${alias} disagree`);
  }
  return value ?? other;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], name: string): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new Invalid(`${name} must be one of ${allowed.join(", ")}`);
  }
  return value as T;
}

function integerIn(value: unknown, min: number, max: number, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new Invalid(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** JSON with object keys sorted at every level, so equal params always hash equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * sha256 of the normalised generation params (seed names, no defaults filled in, callBackUrl
 * left out: the same row sent by two workers with different callback hosts is still a duplicate).
 */
export function requestHash(params: GenerationParams): string {
  return createHash("sha256").update(canonicalJson(params)).digest("hex");
}
