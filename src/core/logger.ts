import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger } from "pino";

/**
 * Paths pino censors wherever they appear in a log object. The API key is never put into a log
 * object on purpose; this is the second line of defence.
 */
const REDACT_PATHS = [
  "apiKey",
  "*.apiKey",
  "KIE_API_KEY",
  "*.KIE_API_KEY",
  "KIE_API_KEYS",
  "*.KIE_API_KEYS",
  "apiKeys",
  "*.apiKeys",
  "KIE_WEBHOOK_HMAC_KEY",
  "*.KIE_WEBHOOK_HMAC_KEY",
  "hmacKey",
  "*.hmacKey",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "secretAccessKey",
  "*.secretAccessKey",
];

/**
 * pino's error serializer, without what an error may quote of a command it failed: ioredis puts
 * the command on its reply errors (`command: { name, args }`), and an AUTH refused on a reconnect
 * (a rotated password, a disabled ACL user) carries the password in `args`; a Cluster's
 * `lastNodeError` and an AggregateError's errors are walked too. The command's name stays.
 */
function serializeError(error: unknown): unknown {
  return withoutCommandArgs(pino.stdSerializers.err(error as Error), 0);
}

/** `value` with every `command.args` left out, copied where changed (never the error itself). */
function withoutCommandArgs(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object" || depth > 6) return value;
  if (Array.isArray(value)) return value.map((item) => withoutCommandArgs(item, depth + 1));
  // The serialized error (depth 0) is pino's fresh object, changed in place: it keeps its
  // prototype, which hides the `raw` back-reference. Objects below it are the error's own: copied.
  const out: Record<string, unknown> = depth === 0 ? (value as Record<string, unknown>) : { ...value };
  for (const [key, field] of Object.entries(out)) {
    if (key === "command" && field !== null && typeof field === "object" && "args" in field) {
      out[key] = { name: (field as { name?: unknown }).name };
    } else if (field !== null && typeof field === "object") {
      out[key] = withoutCommandArgs(field, depth + 1);
    }
  }
  return out;
}

export interface LoggerOptions {
  level?: string;
  /** Human-readable lines instead of JSON. @defaultValue process.stderr.isTTY */
  pretty?: boolean;
  /** Where lines go. @defaultValue stderr (stdout is for command output) */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  const destination = options.destination;
  const base = {
    level,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: { err: serializeError },
    base: { pid: process.pid },
  };
  if (options.pretty ?? process.stderr.isTTY) {
    return pino(
      base,
      pretty({ destination: destination ?? process.stderr, sync: true, colorize: !destination }),
    );
  }
  return pino(base, destination ?? pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
