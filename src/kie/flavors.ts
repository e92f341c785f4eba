/**
 * What differs between the two API flavours: paths and the submit body. Everything else (auth,
 * envelopes, error codes, credits, download URLs) is shared.
 */
import type { ApiFlavor, GenerationParams, SubmitRequest } from "./types.js";

/** The market API's model name for Qwen text-to-image. */
const JOBS_MODEL = "qwen/text-to-image";

export interface FlavorEndpoints {
  submit: string;
  status: string;
}

export const FLAVOR_ENDPOINTS: Readonly<Record<ApiFlavor, FlavorEndpoints>> = {
  qwen: { submit: "/api/v1/qwen/generate", status: "/api/v1/qwen/record-info" },
  jobs: { submit: "/api/v1/jobs/createTask", status: "/api/v1/jobs/recordInfo" },
};

export const SHARED_ENDPOINTS = {
  credit: "/api/v1/chat/credit",
  downloadUrl: "/api/v1/common/download-url",
} as const;

/** The submit body for a flavour; undefined parameters are left out so the API applies its defaults. */
export function submitBody(flavor: ApiFlavor, request: SubmitRequest): Record<string, unknown> {
  return flavor === "qwen" ? qwenBody(request) : jobsBody(request);
}

/**
 * The seed's flat body. `negative_prompt` is not in the seed's table but is passed on anyway:
 * dropping it silently would change the image without telling anyone.
 */
function qwenBody(request: SubmitRequest): Record<string, unknown> {
  return defined({
    prompt: request.prompt,
    image_size: request.image_size,
    num_inference_steps: request.num_inference_steps,
    guidance_scale: request.guidance_scale,
    seed: request.seed,
    acceleration_level: request.acceleration_level,
    output_format: request.output_format,
    safety_check: request.safety_check,
    negative_prompt: request.negative_prompt,
    callBackUrl: request.callBackUrl,
  });
}

/** `{model, input, callBackUrl}` with the market's parameter names. */
function jobsBody(request: SubmitRequest): Record<string, unknown> {
  return defined({
    model: JOBS_MODEL,
    input: marketInput(request),
    callBackUrl: request.callBackUrl,
  });
}

function marketInput(params: GenerationParams): Record<string, unknown> {
  return defined({
    prompt: params.prompt,
    image_size: params.image_size,
    num_inference_steps: params.num_inference_steps,
    guidance_scale: params.guidance_scale,
    seed: params.seed,
    acceleration: params.acceleration_level,
    output_format: params.output_format === "jpg" ? "jpeg" : params.output_format,
    enable_safety_checker: params.safety_check,
    negative_prompt: params.negative_prompt,
  });
}

function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}
