/**
 * The KIE image API as the rest of the project sees it: one request shape, one normalised task
 * record, whatever API flavour is spoken on the wire.
 */

export const IMAGE_SIZES = [
  "square",
  "square_hd",
  "portrait_4_3",
  "portrait_3_2",
  "portrait_16_9",
  "landscape_4_3",
  "landscape_3_2",
  "landscape_16_9",
] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

export const ACCELERATION_LEVELS = ["none", "regular", "high"] as const;
export type AccelerationLevel = (typeof ACCELERATION_LEVELS)[number];

export const OUTPUT_FORMATS = ["png", "jpg"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * Qwen's three modes, by kie-batch's names: text-to-image (the seed's endpoint, or the market
 * API's `qwen/text-to-image`), and two market-only modes that start from an input image.
 */
export const KIE_MODELS = ["text-to-image", "image-to-image", "edit"] as const;
export type KieModel = (typeof KIE_MODELS)[number];

/** The market API's model names (`createTask`'s `model`). */
export const MARKET_MODELS: Readonly<Record<KieModel, string>> = {
  "text-to-image": "qwen/text-to-image",
  "image-to-image": "qwen/image-to-image",
  edit: "qwen/image-edit",
};

/** The models that need an input image, and so the market (jobs) API. */
export function needsInputImage(model: KieModel | undefined): boolean {
  return model === "image-to-image" || model === "edit";
}

/** Limits shared by the manifest validator, the client and the simulator. */
export const LIMITS = {
  promptMaxChars: 5000,
  /** `qwen/image-edit` takes shorter prompts than the other two modes. */
  editPromptMaxChars: 2000,
  strengthMin: 0,
  strengthMax: 1,
  /** Largest input image kie-batch uploads (and the simulator's upload limit by default). */
  inputImageMaxBytes: 10 * 1024 * 1024,
  negativePromptMaxChars: 500,
  stepsMin: 2,
  stepsMax: 250,
  guidanceMin: 0,
  guidanceMax: 20,
  seedMin: 0,
  seedMax: 2 ** 32 - 1,
} as const;

/** Credits a text-to-image image costs by acceleration level (seed: none dearest, high cheapest). */
export const CREDITS_BY_ACCELERATION: Record<AccelerationLevel, number> = { none: 8, regular: 7, high: 6 };
/** A row that names no acceleration is estimated at the dearest price: the API's default is undocumented. */
export const CREDITS_UPPER_BOUND = 8;

/** The generation parameters of one image, in the seed's (qwen flavour) names. */
export interface GenerationParams {
  prompt: string;
  image_size?: ImageSize;
  num_inference_steps?: number;
  guidance_scale?: number;
  seed?: number;
  acceleration_level?: AccelerationLevel;
  output_format?: OutputFormat;
  safety_check?: boolean;
  negative_prompt?: string;
  /** Which mode; absent is text-to-image (so text-to-image rows keep the ids they always had). */
  model?: KieModel;
  /** The input image (image-to-image, edit): a URL KIE fetches. */
  image_url?: string;
  /** image-to-image only: 0 keeps the input, 1 remakes it. */
  strength?: number;
  /** A local input image (absolute path), uploaded before the create; never sent to KIE. */
  image_path?: string;
  /** The sha256 of `image_path`'s bytes when the row was enqueued. */
  image_sha256?: string;
}

/** Every generation parameter but `prompt`, by the seed's names (ours): what goes on the wire. */
export const PARAM_NAMES = [
  "image_size",
  "num_inference_steps",
  "guidance_scale",
  "seed",
  "acceleration_level",
  "output_format",
  "safety_check",
  "negative_prompt",
  "image_url",
  "strength",
] as const satisfies readonly Exclude<keyof GenerationParams, "prompt">[];

/** The market API's names for the two parameters it calls otherwise. */
export const MARKET_PARAM_NAMES: Readonly<Partial<Record<(typeof PARAM_NAMES)[number], string>>> = {
  acceleration_level: "acceleration",
  safety_check: "enable_safety_checker",
};

export interface SubmitRequest extends GenerationParams {
  /** Where KIE should POST when the task finishes (webhook mode). */
  callBackUrl?: string;
}

export type TaskStatus = "generating" | "success" | "failed";

/** A status answer, normalised across flavours. */
export interface TaskRecord {
  taskId: string;
  status: TaskStatus;
  /** One or more result URLs; empty unless status is success. */
  imageUrls: string[];
  /** Provider's failure code as a string (successFlag 2/3 become "2"/"3"; failCode as given). */
  failCode?: string;
  failMessage?: string;
  /** Epoch milliseconds. */
  createdAt?: number;
  /** Epoch milliseconds. */
  completedAt?: number;
  /** Credits the API says the task consumed, where it says so. */
  creditsConsumed?: number;
}

/** What every stage needs from KIE. The undici client implements it; tests may pass an object literal. */
export interface KieApi {
  /** Creates a generation task and returns its id. Throws KieError. */
  submit(request: SubmitRequest, signal?: AbortSignal): Promise<string>;
  /** Reads a task's state. Throws KieError (422 "recordInfo is null" for unknown or just-created tasks). */
  getTask(taskId: string, signal?: AbortSignal): Promise<TaskRecord>;
  /** Exchanges a KIE result URL for a fresh direct URL (valid about 20 minutes). */
  refreshDownloadUrl(url: string, signal?: AbortSignal): Promise<string>;
  /** The account's remaining credits. */
  getCredits(signal?: AbortSignal): Promise<number>;
}

export type ApiFlavor = "qwen" | "jobs";
