/**
 * `kie-batch simulate` flags (strings, as commander hands them over) -> SimulatorOptions.
 * Pure: every bad value throws a ValueError that names the flag and the value.
 */
import { ValueError } from "../core/errors.js";
import {
  MAX_IMAGES_PER_TASK,
  MAX_PORT,
  MAX_SEED,
  parseDuration,
  parseDurationRange,
  parseNumber,
  parseRate,
  parseSize,
  withOption,
} from "../core/values.js";
import type { SimulatorOptions } from "./types.js";

export interface SimulatorFlags {
  port?: string | number;
  apiKey?: string;
  /** "20/10s" */
  rateLimit?: string;
  rateLimitHttp?: boolean;
  /** "2s-6s", "30s-8m", or one duration for a fixed latency. */
  latency?: string;
  timeScale?: string | number;
  /** Simulated record lag, e.g. "1500ms". */
  recordLag?: string;
  failureRate?: string | number;
  creationFailureRate?: string | number;
  faultRate?: string | number;
  credits?: string | number;
  /** "14d" */
  fileTtl?: string;
  /** "25MB" */
  imagePad?: string;
  imagesPerTask?: string | number;
  hmacKey?: string;
  seed?: string | number;
  publicHost?: string;
  host?: string;
}

export function parseSimulatorFlags(flags: SimulatorFlags): SimulatorOptions {
  const options: SimulatorOptions = {};
  if (flags.port !== undefined)
    options.port = parseNumber(flags.port, "--port", { min: 0, max: MAX_PORT, integer: true });
  if (flags.apiKey !== undefined) {
    if (flags.apiKey.trim() === "")
      throw new ValueError("--api-key", "Invalid --api-key: it must not be empty");
    options.apiKey = flags.apiKey;
  }
  if (flags.rateLimit !== undefined)
    options.rateLimit = withOption("--rate-limit", () => parseRate(flags.rateLimit!));
  if (flags.rateLimitHttp !== undefined) options.rateLimitHttpStatus = flags.rateLimitHttp;
  if (flags.latency !== undefined) options.latency = parseDurationRange(flags.latency, "--latency");
  if (flags.timeScale !== undefined) {
    options.timeScale = parseNumber(flags.timeScale, "--time-scale", { min: Number.MIN_VALUE });
  }
  if (flags.recordLag !== undefined)
    options.recordLagMs = withOption("--record-lag", () => parseDuration(flags.recordLag!));
  if (flags.failureRate !== undefined)
    options.failureRate = parseNumber(flags.failureRate, "--failure-rate", RATE);
  if (flags.creationFailureRate !== undefined) {
    options.creationFailureRate = parseNumber(flags.creationFailureRate, "--creation-failure-rate", RATE);
  }
  if (flags.faultRate !== undefined) options.faultRate = parseNumber(flags.faultRate, "--fault-rate", RATE);
  if (flags.credits !== undefined) options.credits = parseNumber(flags.credits, "--credits", { min: 0 });
  if (flags.fileTtl !== undefined) {
    options.fileTtlMs = withOption("--file-ttl", () => parseDuration(flags.fileTtl!));
    if (options.fileTtlMs <= 0)
      throw new ValueError("--file-ttl", `Invalid --file-ttl ${JSON.stringify(flags.fileTtl)}: must be > 0`);
  }
  if (flags.imagePad !== undefined)
    options.imagePadBytes = withOption("--image-pad", () => parseSize(flags.imagePad!));
  if (flags.imagesPerTask !== undefined) {
    options.imagesPerTask = parseNumber(flags.imagesPerTask, "--images-per-task", {
      min: 1,
      max: MAX_IMAGES_PER_TASK,
      integer: true,
    });
  }
  if (flags.hmacKey !== undefined) options.webhookHmacKey = flags.hmacKey;
  if (flags.seed !== undefined) {
    options.randomSeed = parseNumber(flags.seed, "--seed", { min: 0, max: MAX_SEED, integer: true });
  }
  if (flags.publicHost !== undefined) options.publicHost = flags.publicHost;
  if (flags.host !== undefined) options.host = flags.host;
  return options;
}

const RATE = { min: 0, max: 1 };
