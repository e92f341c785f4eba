import { CodedError } from "../core/errors.js";
import { type Config, envSchema } from "./schema.js";

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

/** The worker cannot run without a key; other commands can. */
export function requireApiKey(config: Config): string {
  if (!config.KIE_API_KEY) {
    throw new ConfigError(["KIE_API_KEY: required by the worker (the bearer token of your KIE.ai account)"]);
  }
  return config.KIE_API_KEY;
}
