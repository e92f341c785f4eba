import type { Config } from "../config/index.js";
import { SECRET_KEYS } from "../config/schema.js";
import { urlSecrets } from "../core/redact-url.js";

const REDACTED = "[redacted]";
/** Shorter values are not scrubbed: replacing every "ab" in a message would wreck it and hide nothing. */
const MIN_SECRET_CHARS = 4;

/**
 * The secret values an alert must never carry: the KIE key, the webhook HMAC key, AWS
 * credentials (from the config or the environment the SDK reads), and the Redis password.
 */
export function secretValues(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  const values = new Set<string>();
  for (const name of SECRET_KEYS) {
    const value = (config as Record<string, unknown>)[name] ?? env[name];
    if (typeof value === "string") values.add(value);
  }
  for (const secret of urlSecrets(config.REDIS_URL)) values.add(secret);
  for (const node of config.REDIS_CLUSTER_NODES?.split(",") ?? []) {
    for (const secret of urlSecrets(node.trim())) values.add(secret);
  }
  return [...values].filter((v) => v.length >= MIN_SECRET_CHARS);
}

/** Replaces every occurrence of each secret in every string of `value`, as JSON text. */
export function scrubbedJson(value: unknown, secrets: readonly string[]): string {
  const scrub = (text: string) =>
    secrets.reduce((out, secret) => (out.includes(secret) ? out.split(secret).join(REDACTED) : out), text);
  return JSON.stringify(value, (_key, field: unknown) => (typeof field === "string" ? scrub(field) : field));
}
