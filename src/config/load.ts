import { CodedError } from "../core/errors.js";
import { redactUrl } from "../core/redact-url.js";
import { type Config, envSchema, SECRET_KEYS } from "./schema.js";

export class ConfigError extends CodedError<"invalid_config"> {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super("invalid_config", `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }

  protected override details() {
    return { problems: this.problems };
  }
}

/**
 * Reads the configuration from an environment (process.env by default) plus overrides from
 * flags, validated by one schema. Empty strings count as unset, as shells make them easily.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Record<string, string | undefined> = {},
): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = overrides[key] ?? env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "config");
      return `${name}: ${issue.message}`;
    });
    throw new ConfigError(problems);
  }
  return parsed.data;
}

/** The configuration with every secret replaced, safe to print or log. */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) {
    if (out[key] !== undefined) out[key] = "[redacted]";
  }
  out.REDIS_URL = redactUrl(config.REDIS_URL);
  // Slack-style incoming webhook URLs carry their secret in the path.
  if (config.KIE_ALERT_WEBHOOK_URL)
    out.KIE_ALERT_WEBHOOK_URL = `${new URL(config.KIE_ALERT_WEBHOOK_URL).origin}/[redacted]`;
  return out;
}

/** The worker cannot run without a key; other commands can. */
export function requireApiKey(config: Config): string {
  if (!config.KIE_API_KEY) {
    throw new ConfigError(["KIE_API_KEY: required by the worker (the bearer token of your KIE.ai account)"]);
  }
  return config.KIE_API_KEY;
}
