/**
 * Every value a user types (flag, argument, environment variable) is read here against named
 * limits, as pg-boss's `attorney.ts` does. Each parser returns a typed value or throws a
 * ValueError whose message is meant for the user as is (the CLI prints it and exits 2). In core
 * because the config, producer, commands, simulator and CLI all read values, and may import core.
 */
import { ValueError } from "./errors.js";

/** The largest TCP port; 0 asks the system for a free one. */
export const MAX_PORT = 65_535;

/** BullMQ's smallest priority: runs first. */
const MIN_PRIORITY = 1;

/** BullMQ's largest priority: runs last. */
export const MAX_PRIORITY = 2_097_151;

/**
 * BullMQ priority of a batch enqueued without `--priority`. BullMQ runs jobs without a priority
 * before every prioritized job, so an unprioritized large batch would hold back an urgent one
 * given `--priority 1`: every batch gets a priority, lower numbers first.
 */
export const DEFAULT_PRIORITY = 1000;

/** `demo --rows` at most: the demo runs against a local simulator in one sitting. */
export const MAX_DEMO_ROWS = 100_000;

/** `simulate --images-per-task` at most. */
export const MAX_IMAGES_PER_TASK = 16;

/** `simulate --seed` at most: the simulator's generator takes a 32-bit unsigned seed. */
export const MAX_SEED = 2 ** 32 - 1;

/** What `results --format` writes. */
const RESULT_FORMATS = ["jsonl", "csv"] as const;
export type ResultsFormat = (typeof RESULT_FORMATS)[number];

// --- units: "500ms", "25MB", "20/10s" ---

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** SI units are powers of 1000, IEC units (KiB...) powers of 1024: "25MB" is 25,000,000 bytes. */
const SIZE_UNITS_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

const NUMBER_WITH_UNIT = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i;

/** A unit parser does not know which flag it reads: `withOption` names it. */
function invalid(message: string): ValueError {
  return new ValueError("", message);
}

function splitNumberAndUnit(input: string, what: string, example: string): { value: number; unit: string } {
  const match = NUMBER_WITH_UNIT.exec(input.trim());
  if (!match) throw invalid(`Invalid ${what} ${JSON.stringify(input)}: expected e.g. ${example}`);
  return { value: Number(match[1]), unit: (match[2] ?? "").toLowerCase() };
}

/** "500ms", "10s", "8m", "2h", "14d" (a bare number is milliseconds) -> milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === "number") return checkedNonNegative(input, "duration", String(input));
  const { value, unit } = splitNumberAndUnit(input, "duration", '"500ms", "10s", "8m", "2h" or "14d"');
  const factor = unit === "" ? 1 : DURATION_UNITS_MS[unit];
  if (factor === undefined) {
    throw invalid(`Invalid duration ${JSON.stringify(input)}: unknown unit "${unit}" (use ms, s, m, h or d)`);
  }
  return Math.round(value * factor);
}

/** "100", "1KiB", "25MB", "2MiB" -> bytes (whole). */
export function parseSize(input: string | number): number {
  if (typeof input === "number") return Math.floor(checkedNonNegative(input, "size", String(input)));
  const { value, unit } = splitNumberAndUnit(input, "size", '"100", "1KiB" or "25MB"');
  const factor = unit === "" ? 1 : SIZE_UNITS_BYTES[unit];
  if (factor === undefined) {
    throw invalid(
      `Invalid size ${JSON.stringify(input)}: unknown unit "${unit}" (use B, KB, MB, GB, KiB, MiB or GiB)`,
    );
  }
  return Math.floor(value * factor);
}

/** "20/10s" -> 20 per 10,000 ms; "5/s" means 5 per second. */
export function parseRate(input: string): { limit: number; windowMs: number } {
  const [countText, windowText, extra] = input.trim().split("/");
  const bad = (why: string) => invalid(`Invalid rate ${JSON.stringify(input)}: ${why}`);
  if (countText === undefined || windowText === undefined || extra !== undefined) {
    throw bad('expected <count>/<window>, e.g. "20/10s"');
  }
  const limit = Number(countText.trim());
  if (!Number.isInteger(limit) || limit < 1 || countText.trim() === "") {
    throw bad("the count must be a whole number >= 1");
  }
  // "5/s" reads as "5 per 1 second".
  const windowSpec = /^[a-z]+$/i.test(windowText.trim()) ? `1${windowText.trim()}` : windowText;
  let windowMs: number;
  try {
    windowMs = parseDuration(windowSpec);
  } catch (error) {
    throw bad((error as Error).message);
  }
  if (windowMs <= 0) throw bad("the window must be longer than 0");
  return { limit, windowMs };
}

/** "2s-6s" or one duration ("5s", a fixed value) -> a range in milliseconds. */
export function parseDurationRange(text: string, option: string): { minMs: number; maxMs: number } {
  const parts = text.split("-").map((part) => part.trim());
  if (parts.length > 2 || parts.some((part) => part === "")) {
    throw new ValueError(option, `Invalid ${option} ${JSON.stringify(text)}: expected e.g. "2s-6s" or "5s"`);
  }
  const [minMs, maxMs] = parts.map((part) => withOption(option, () => parseDuration(part))) as [
    number,
    number?,
  ];
  const range = { minMs, maxMs: maxMs ?? minMs };
  if (range.maxMs < range.minMs) {
    throw new ValueError(
      option,
      `Invalid ${option} ${JSON.stringify(text)}: the minimum is above the maximum`,
    );
  }
  return range;
}

/** Runs a unit parser for `option`, whose ValueError then names the flag: "--file-ttl: Invalid ...". */
export function withOption<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof ValueError)) throw error;
    throw new ValueError(option, `${option}: ${error.message}`);
  }
}

function checkedNonNegative(value: number, what: string, shown: string): number {
  if (!Number.isFinite(value) || value < 0) throw invalid(`Invalid ${what} ${shown}: expected a number >= 0`);
  return value;
}

// --- numbers for flags ---

/** Bounds of `parseNumber`: none by default; a `min` of `Number.MIN_VALUE` reads as "> 0". */
export interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

/** A number (as commander hands it over, or already one) within `rule`: "Invalid --x "v": expected ...". */
export function parseNumber(value: string | number, option: string, rule: NumberRule): number {
  const { min = -Infinity, max = Infinity, integer = false } = rule;
  const parsed = typeof value === "number" ? value : value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
    const lower = min === Number.MIN_VALUE ? "> 0" : `>= ${min}`;
    const range = max === Infinity ? lower : `from ${min} to ${max}`;
    throw new ValueError(
      option,
      `Invalid ${option} ${JSON.stringify(value)}: expected ${integer ? "an integer" : "a number"} ${range}`,
    );
  }
  return parsed;
}

/** Digits only ("12"), from `min` up to `max`: a count of workers, rows, ... */
export function parseWholeNumber(text: string, option: string, min = 0, max = Infinity): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ValueError(option, `${option}: expected a whole number ${range}, got "${text}"`);
  }
  return n;
}

/** A port to listen on, 0 to `MAX_PORT` (0 picks a free one). */
export function parsePort(text: string, option: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > MAX_PORT) {
    throw new ValueError(option, `${option}: expected a port number from 0 to ${MAX_PORT}, got "${text}"`);
  }
  return port;
}

/** `--priority N` as typed: a whole number from 1 (first) to `MAX_PRIORITY` (last). */
export function parsePriority(text: string): number {
  const value = text.trim();
  if (!/^\d+$/.test(value)) throw priorityError(text);
  return checkPriority(Number(value), text);
}

/** A priority given as a number (the producer's API): whole, from 1 to `MAX_PRIORITY`. */
export function checkPriority(priority: number, shown = String(priority)): number {
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw priorityError(shown);
  }
  return priority;
}

function priorityError(found: string): ValueError {
  return new ValueError(
    "--priority",
    `--priority: expected a whole number from ${MIN_PRIORITY} (runs first) to ${MAX_PRIORITY} (runs last), found ${JSON.stringify(found)} (batches without --priority run at ${DEFAULT_PRIORITY})`,
  );
}

/** `enqueue --budget CREDITS` as typed: a plain decimal number of credits, 0 or more. */
export function parseCredits(text: string): number {
  const value = text.trim();
  if (!/^\d+(\.\d+)?$/.test(value)) throw creditsError(text);
  return Number(value);
}

/** A budget given as a number (the producer's API): finite, 0 or more. */
export function checkCredits(credits: number): number {
  if (!(Number.isFinite(credits) && credits >= 0)) throw creditsError(String(credits));
  return credits;
}

function creditsError(found: string): ValueError {
  return new ValueError(
    "--budget",
    `--budget: expected a number of credits, 0 or more, found ${JSON.stringify(found)}`,
  );
}

/** `kie-batch budget BATCH CREDITS`: `none` (null) removes the budget; else credits, 0 or more. */
export function parseBudget(text: string): number | null {
  const value = text.trim().toLowerCase();
  if (value === "none") return null;
  const credits = Number(value);
  if (value === "" || !/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(credits)) {
    throw new ValueError("budget", `budget: expected a number of credits >= 0, or "none", got "${text}"`);
  }
  return credits;
}

/** `results --format`: jsonl (the default) or csv, in any case. */
export function parseResultsFormat(value: string | undefined): ResultsFormat {
  const format = (value ?? "jsonl").toLowerCase();
  if (!(RESULT_FORMATS as readonly string[]).includes(format)) {
    throw new ValueError("--format", `--format: expected jsonl or csv, got "${value}"`);
  }
  return format as ResultsFormat;
}

// --- environment variables: the message says what was expected; the config names the variable ---

/** Digits only, any size a JS number holds exactly. */
export function parseCount(text: string, expected: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw expectedError(expected, text);
  return n;
}

/** A plain decimal number above 0 ("20", "0.5"). */
export function parsePositiveNumber(text: string, expected: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || n <= 0) throw expectedError(expected, text);
  return n;
}

/** 1/true/yes/on or 0/false/no/off (any case; empty is false). */
export function parseSwitch(text: string): boolean {
  const v = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off", ""].includes(v)) return false;
  throw expectedError("true or false", text);
}

/** An http(s) or redis(s) URL, without trailing slashes. The message never echoes it: it may hold a password. */
export function parseServiceUrl(text: string, expected: string): string {
  try {
    const parsed = new URL(text);
    if (!/^(https?|rediss?):$/.test(parsed.protocol)) throw new Error("protocol");
    return text.replace(/\/+$/, "");
  } catch {
    throw new ValueError("", `expected ${expected}, got a value that is not one`);
  }
}

function expectedError(expected: string, found: string): ValueError {
  return new ValueError("", `expected ${expected}, got ${JSON.stringify(found)}`);
}
