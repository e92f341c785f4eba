/**
 * Tiny parsers for the human units that flags and env values use ("10s", "25MB", "20/10s").
 * Each throws an Error naming the bad value, so a CLI can print it as is.
 */

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

function splitNumberAndUnit(input: string, what: string, example: string): { value: number; unit: string } {
  const match = NUMBER_WITH_UNIT.exec(input.trim());
  if (!match) throw new Error(`Invalid ${what} ${JSON.stringify(input)}: expected e.g. ${example}`);
  return { value: Number(match[1]), unit: (match[2] ?? "").toLowerCase() };
}

/** "500ms", "10s", "8m", "2h", "14d" (a bare number is milliseconds) -> milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === "number") return checkedNonNegative(input, "duration", String(input));
  const { value, unit } = splitNumberAndUnit(input, "duration", '"500ms", "10s", "8m", "2h" or "14d"');
  const factor = unit === "" ? 1 : DURATION_UNITS_MS[unit];
  if (factor === undefined) {
    throw new Error(
      `Invalid duration ${JSON.stringify(input)}: unknown unit "${unit}" (use ms, s, m, h or d)`,
    );
  }
  return Math.round(value * factor);
}

/** "100", "1KiB", "25MB", "2MiB" -> bytes (whole). */
export function parseSize(input: string | number): number {
  if (typeof input === "number") return Math.floor(checkedNonNegative(input, "size", String(input)));
  const { value, unit } = splitNumberAndUnit(input, "size", '"100", "1KiB" or "25MB"');
  const factor = unit === "" ? 1 : SIZE_UNITS_BYTES[unit];
  if (factor === undefined) {
    throw new Error(
      `Invalid size ${JSON.stringify(input)}: unknown unit "${unit}" (use B, KB, MB, GB, KiB, MiB or GiB)`,
    );
  }
  return Math.floor(value * factor);
}

/** "20/10s" -> 20 per 10,000 ms; "5/s" means 5 per second. */
export function parseRate(input: string): { limit: number; windowMs: number } {
  const [countText, windowText, extra] = input.trim().split("/");
  const example = '"20/10s"';
  if (countText === undefined || windowText === undefined || extra !== undefined) {
    throw new Error(`Invalid rate ${JSON.stringify(input)}: expected <count>/<window>, e.g. ${example}`);
  }
  const limit = Number(countText.trim());
  if (!Number.isInteger(limit) || limit < 1 || countText.trim() === "") {
    throw new Error(`Invalid rate ${JSON.stringify(input)}: the count must be a whole number >= 1`);
  }
  // "5/s" reads as "5 per 1 second".
  const windowSpec = /^[a-z]+$/i.test(windowText.trim()) ? `1${windowText.trim()}` : windowText;
  let windowMs: number;
  try {
    windowMs = parseDuration(windowSpec);
  } catch (error) {
    throw new Error(`Invalid rate ${JSON.stringify(input)}: ${(error as Error).message}`);
  }
  if (windowMs <= 0)
    throw new Error(`Invalid rate ${JSON.stringify(input)}: the window must be longer than 0`);
  return { limit, windowMs };
}

function checkedNonNegative(value: number, what: string, shown: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`Invalid ${what} ${shown}: expected a number >= 0`);
  return value;
}
