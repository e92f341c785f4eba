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
  const base = { level, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, base: { pid: process.pid } };
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
