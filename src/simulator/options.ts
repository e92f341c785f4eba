/** `SimulatorOptions` with every default filled in and every value checked once, at start. */
import { LIMITS } from "../kie/types.js";
import type { SimulatorOptions } from "./types.js";

const DAY_MS = 86_400_000;
/** download-url links live 20 (simulated) minutes, as the real API says. */
export const DOWNLOAD_URL_TTL_MS = 20 * 60_000;

type Unset = "apiKey" | "apiKeys" | "accounts" | "webhookHmacKey" | "randomSeed";
export type ResolvedOptions = Required<Omit<SimulatorOptions, Unset>> & Pick<SimulatorOptions, Unset>;

export function resolveOptions(options: SimulatorOptions = {}): ResolvedOptions {
  const resolved: ResolvedOptions = {
    port: options.port ?? 0,
    rateLimit: options.rateLimit ?? { limit: 20, windowMs: 10_000 },
    rateLimitHttpStatus: options.rateLimitHttpStatus ?? false,
    latency: options.latency ?? { minMs: 2000, maxMs: 6000 },
    timeScale: options.timeScale ?? 1,
    recordLagMs: options.recordLagMs ?? 1500,
    credits: options.credits ?? 1_000_000,
    failureRate: options.failureRate ?? 0,
    creationFailureRate: options.creationFailureRate ?? 0,
    faultRate: options.faultRate ?? 0,
    fileTtlMs: options.fileTtlMs ?? 14 * DAY_MS,
    imagePadBytes: options.imagePadBytes ?? 0,
    imagesPerTask: options.imagesPerTask ?? 1,
    uploadTtlMs: options.uploadTtlMs ?? DAY_MS,
    uploadMaxBytes: options.uploadMaxBytes ?? LIMITS.inputImageMaxBytes,
    reportCreditsConsumed: options.reportCreditsConsumed ?? true,
    publicHost: options.publicHost ?? "127.0.0.1",
    host: options.host ?? "127.0.0.1",
    apiKey: options.apiKey,
    apiKeys: options.apiKeys,
    accounts: options.accounts,
    webhookHmacKey: options.webhookHmacKey,
    randomSeed: options.randomSeed,
  };
  check(
    Number.isInteger(resolved.port) && resolved.port >= 0 && resolved.port <= 65535,
    "port",
    resolved.port,
  );
  check(resolved.apiKey === undefined || resolved.apiKey.length > 0, "apiKey", "(empty)");
  check(resolved.apiKeys?.every((key) => key.length > 0) ?? true, "apiKeys", "(an empty key)");
  const { limit, windowMs } = resolved.rateLimit;
  check(
    Number.isInteger(limit) && limit >= 1 && windowMs > 0,
    "rateLimit",
    JSON.stringify(resolved.rateLimit),
  );
  const { minMs, maxMs } = resolved.latency;
  check(minMs >= 0 && maxMs >= minMs, "latency", JSON.stringify(resolved.latency));
  check(resolved.timeScale > 0 && Number.isFinite(resolved.timeScale), "timeScale", resolved.timeScale);
  check(resolved.recordLagMs >= 0, "recordLagMs", resolved.recordLagMs);
  check(resolved.credits >= 0, "credits", resolved.credits);
  for (const key of ["failureRate", "creationFailureRate", "faultRate"] as const) {
    check(resolved[key] >= 0 && resolved[key] <= 1, key, resolved[key]);
  }
  check(resolved.fileTtlMs > 0, "fileTtlMs", resolved.fileTtlMs);
  check(resolved.uploadTtlMs > 0, "uploadTtlMs", resolved.uploadTtlMs);
  check(resolved.uploadMaxBytes > 0, "uploadMaxBytes", resolved.uploadMaxBytes);
  check(resolved.imagePadBytes >= 0, "imagePadBytes", resolved.imagePadBytes);
  check(
    Number.isInteger(resolved.imagesPerTask) && resolved.imagesPerTask >= 1,
    "imagesPerTask",
    resolved.imagesPerTask,
  );
  return resolved;
}

function check(ok: boolean, name: string, value: unknown): void {
  if (!ok) throw new RangeError(`Invalid simulator option ${name}: ${String(value)}`);
}
