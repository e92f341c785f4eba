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

/** Limits shared by the manifest validator, the client and the simulator. */
export const LIMITS = {
  promptMaxChars: 5000,
  negativePromptMaxChars: 500,
  stepsMin: 2,
  stepsMax: 250,
  guidanceMin: 0,
  guidanceMax: 20,
  seedMin: 0,
  seedMax: 2 ** 32 - 1,
} as const;

/** Credits an image costs by acceleration level (seed: none dearest, high cheapest). */
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
}

/** Every generation parameter but `prompt`, by the seed's names (ours). */
export const PARAM_NAMES = [
  "image_size",
  "num_inference_steps",
  "guidance_scale",
  "seed",
  "acceleration_level",
  "output_format",
  "safety_check",
  "negative_prompt",
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
