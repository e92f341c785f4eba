/**
 * `kie-batch simulate` flags (strings, as commander hands them over) -> SimulatorOptions.
 * Pure: every bad value throws an Error that names the flag and the value.
 */
import { parseDuration, parseRate, parseSize } from "../core/units.js";
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
    options.port = number(flags.port, "--port", { min: 0, max: 65535, integer: true });
  if (flags.apiKey !== undefined) {
    if (flags.apiKey.trim() === "") throw new Error("Invalid --api-key: it must not be empty");
    options.apiKey = flags.apiKey;
  }
  if (flags.rateLimit !== undefined)
    options.rateLimit = named("--rate-limit", () => parseRate(flags.rateLimit!));
  if (flags.rateLimitHttp !== undefined) options.rateLimitHttpStatus = flags.rateLimitHttp;
  if (flags.latency !== undefined) options.latency = parseLatency(flags.latency);
  if (flags.timeScale !== undefined) {
    options.timeScale = number(flags.timeScale, "--time-scale", { min: Number.MIN_VALUE });
  }
  if (flags.recordLag !== undefined)
    options.recordLagMs = named("--record-lag", () => parseDuration(flags.recordLag!));
  if (flags.failureRate !== undefined)
    options.failureRate = number(flags.failureRate, "--failure-rate", RATE);
  if (flags.creationFailureRate !== undefined) {
    options.creationFailureRate = number(flags.creationFailureRate, "--creation-failure-rate", RATE);
  }
  if (flags.faultRate !== undefined) options.faultRate = number(flags.faultRate, "--fault-rate", RATE);
  if (flags.credits !== undefined) options.credits = number(flags.credits, "--credits", { min: 0 });
  if (flags.fileTtl !== undefined) {
    options.fileTtlMs = named("--file-ttl", () => parseDuration(flags.fileTtl!));
    if (options.fileTtlMs <= 0)
      throw new Error(`Invalid --file-ttl ${JSON.stringify(flags.fileTtl)}: must be > 0`);
  }
  if (flags.imagePad !== undefined)
    options.imagePadBytes = named("--image-pad", () => parseSize(flags.imagePad!));
  if (flags.imagesPerTask !== undefined) {
    options.imagesPerTask = number(flags.imagesPerTask, "--images-per-task", {
      min: 1,
      max: 16,
      integer: true,
    });
  }
  if (flags.hmacKey !== undefined) options.webhookHmacKey = flags.hmacKey;
  if (flags.seed !== undefined) {
    options.randomSeed = number(flags.seed, "--seed", { min: 0, max: 2 ** 32 - 1, integer: true });
  }
  if (flags.publicHost !== undefined) options.publicHost = flags.publicHost;
  if (flags.host !== undefined) options.host = flags.host;
  return options;
}

const RATE = { min: 0, max: 1 };

function parseLatency(text: string): { minMs: number; maxMs: number } {
  const parts = text.split("-").map((part) => part.trim());
  if (parts.length > 2 || parts.some((part) => part === "")) {
    throw new Error(`Invalid --latency ${JSON.stringify(text)}: expected e.g. "2s-6s" or "5s"`);
  }
  const [minMs, maxMs] = parts.map((part) => named("--latency", () => parseDuration(part))) as [
    number,
    number?,
  ];
  const range = { minMs, maxMs: maxMs ?? minMs };
  if (range.maxMs < range.minMs) {
    throw new Error(`Invalid --latency ${JSON.stringify(text)}: the minimum is above the maximum`);
  }
  return range;
}

function number(
  value: string | number,
  flag: string,
  { min = -Infinity, max = Infinity, integer = false }: { min?: number; max?: number; integer?: boolean },
): number {
  const parsed = typeof value === "number" ? value : value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
    const lower = min === Number.MIN_VALUE ? "> 0" : `>= ${min}`;
    const range = max === Infinity ? lower : `from ${min} to ${max}`;
    throw new Error(
      `Invalid ${flag} ${JSON.stringify(value)}: expected ${integer ? "an integer" : "a number"} ${range}`,
    );
  }
  return parsed;
}

/** Prefixes a unit parser's message with the flag it came from. */
function named<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new Error(`${flag}: ${(error as Error).message}`);
  }
}
