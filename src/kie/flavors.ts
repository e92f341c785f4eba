/**
 * What differs between the two API flavours: paths and the submit body. Everything else (auth,
 * envelopes, error codes, credits, download URLs) is shared.
 */
import {
  type ApiFlavor,
  type GenerationParams,
  MARKET_MODELS,
  MARKET_PARAM_NAMES,
  needsInputImage,
  PARAM_NAMES,
  type SubmitRequest,
} from "./types.js";

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

/**
 * The submit body for a flavour; undefined parameters are left out so the API applies its defaults.
 * Returns undefined when the flavour cannot carry the request: the seed's endpoint knows only
 * text-to-image (image-to-image and edit exist on the market API alone).
 */
export function submitBody(flavor: ApiFlavor, request: SubmitRequest): Record<string, unknown> | undefined {
  if (flavor === "qwen") return needsInputImage(request.model) ? undefined : qwenBody(request);
  return jobsBody(request);
}

function wireParams(
  params: GenerationParams,
  rename: typeof MARKET_PARAM_NAMES = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { prompt: params.prompt };
  for (const name of PARAM_NAMES) out[rename[name] ?? name] = params[name];
  return out;
}

/**
 * The seed's flat body. `negative_prompt` is not in the seed's table but is passed on anyway:
 * dropping it silently would change the image without telling anyone.
 */
function qwenBody(request: SubmitRequest): Record<string, unknown> {
  return defined({ ...wireParams(request), callBackUrl: request.callBackUrl });
}

/** `{model, input, callBackUrl}` with the market's parameter names. */
function jobsBody(request: SubmitRequest): Record<string, unknown> {
  return defined({
    model: MARKET_MODELS[request.model ?? "text-to-image"],
    input: marketInput(request),
    callBackUrl: request.callBackUrl,
  });
}

function marketInput(params: GenerationParams): Record<string, unknown> {
  const input = wireParams(params, MARKET_PARAM_NAMES);
  if (params.output_format === "jpg") input.output_format = "jpeg";
  return defined(input);
}

function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}
