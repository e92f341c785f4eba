/**
 * Keeping the API key out of errors. The key is only ever written into the Authorization header;
 * these helpers make sure nothing the server or undici says about a request can carry it into a
 * KieError's message or cause (which end up in logs, Redis and the ledger).
 */

const REDACTED = "[redacted]";

/** Turns text into text without the secret. */
export type Scrub = (text: string) => string;

export const noScrub: Scrub = (text) => text;

/**
 * Replaces every occurrence of `secret` (and of the whole `Bearer <secret>` value) in a text. An
 * empty secret scrubs nothing (there is nothing to hide, and replacing "" would be nonsense).
 */
export function createScrubber(secret: string): Scrub {
  if (secret === "") return noScrub;
  return (text) => (text.includes(secret) ? text.split(secret).join(REDACTED) : text);
}

/**
 * The only part of an underlying error a KieError keeps as its `cause`: a plain object with the
 * error's name, code and scrubbed message. Undici errors can hold sockets, response headers and
 * bodies; none of that is kept, so no serialiser (JSON, pino, util.inspect) can find the key.
 */
export interface SafeCause {
  name: string;
  code?: string;
  message: string;
}

export function safeCause(error: unknown, scrub: Scrub): SafeCause {
  if (typeof error === "object" && error !== null) {
    const { name, code, message } = error as { name?: unknown; code?: unknown; message?: unknown };
    const cause: SafeCause = {
      name: typeof name === "string" ? name : "Error",
      message: scrub(typeof message === "string" ? message : ""),
    };
    if (typeof code === "string" || typeof code === "number") cause.code = String(code);
    return cause;
  }
  return { name: "Error", message: scrub(String(error)) };
}

/** Trims a body to a short, single-line excerpt for an error message. */
export function excerpt(text: string, scrub: Scrub, maxChars = 160): string {
  const line = scrub(text).replace(/\s+/g, " ").trim();
  return line.length > maxChars ? `${line.slice(0, maxChars)}…` : line;
}
