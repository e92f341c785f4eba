/**
 * Who may use the dashboard. On loopback it needs nothing; anywhere else it needs a token
 * (`--auth-token` or KIE_DASHBOARD_TOKEN), sent as `Authorization: Bearer <token>` or as the
 * cookie the login page sets. Tokens are compared in constant time.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";

/** The login cookie's name; its value is a digest of the token, never the token itself. */
const SESSION_COOKIE = "kie_dashboard";
/** A token shorter than this is refused at start: it would be guessed. */
export const MIN_TOKEN_CHARS = 16;

/**
 * Whether a request may change something: GET and HEAD always; any other method only without an
 * `Origin` or with one naming this very host. A browser sends `Origin` on every cross-site
 * request but a plain GET, so another site's page cannot post to the dashboard (our forms,
 * bull-board's write routes, the login) even with the user's cookie, and a browser's own `null`
 * origin (a sandboxed frame, a file) is refused too. Scripts (curl) send none and pass.
 */
export function sameOriginWrite(req: Pick<Request, "method" | "headers">): boolean {
  if (req.method === "GET" || req.method === "HEAD") return true;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Equal strings, in time that does not depend on where they differ (both are hashed first). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** The cookie value for a token: an HMAC of it under a per-process key, so the cookie is no token. */
function sessionValue(token: string, key: Buffer): string {
  return createHmac("sha256", key).update(`session:${token}`).digest("base64url");
}

/** How long a login lasts: the cookie's Max-Age, and the expiry signed into its value. */
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Failed logins an address may make within `LOGIN_FAILURE_WINDOW_MS`; the next ones get 429. */
export const MAX_LOGIN_FAILURES = 10;
export const LOGIN_FAILURE_WINDOW_MS = 10 * 60_000;
/** Addresses whose failures are remembered at most (a flood of addresses forgets the oldest). */
const MAX_TRACKED_ADDRESSES = 10_000;

/**
 * A session cookie's value: its expiry (epoch seconds) and an HMAC of the token and that expiry
 * under the per-process key, so the cookie is no token, ends by itself, and dies with the process.
 */
function sessionCookie(token: string, key: Buffer, expiresAtS: number): string {
  return `${expiresAtS}.${sessionValue(`${token}:${expiresAtS}`, key)}`;
}

/** Whether `cookie` is a session cookie of `token` under `key` that has not expired at `nowMs`. */
function sessionValid(cookie: string, token: string, key: Buffer, nowMs: number): boolean {
  const dot = cookie.indexOf(".");
  const expiresAtS = Number(cookie.slice(0, dot));
  if (dot <= 0 || !Number.isSafeInteger(expiresAtS) || expiresAtS * 1000 <= nowMs) return false;
  return tokensEqual(cookie, sessionCookie(token, key, expiresAtS));
}

/**
 * Failed logins per client address, in a sliding window: an address past the limit is refused
 * (429) until its oldest failure leaves the window, whatever it sends, so a token cannot be
 * guessed at speed. Bearer requests are not counted (a script with a wrong token just gets 401s).
 */
class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly now: () => number) {}

  /** Milliseconds until `address` may try again, or 0. */
  retryAfterMs(address: string): number {
    const recent = this.recent(address);
    if (recent.length < MAX_LOGIN_FAILURES) return 0;
    return recent[0]! + LOGIN_FAILURE_WINDOW_MS - this.now();
  }

  fail(address: string): void {
    const recent = this.recent(address);
    recent.push(this.now());
    this.failures.delete(address);
    if (this.failures.size >= MAX_TRACKED_ADDRESSES) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(address, recent);
  }

  private recent(address: string): number[] {
    const since = this.now() - LOGIN_FAILURE_WINDOW_MS;
    return (this.failures.get(address) ?? []).filter((at) => at > since);
  }
}

/**
 * Whether the request came over HTTPS, to this server or to a proxy in front of it: the session
 * cookie is then `Secure`. A forged `X-Forwarded-Proto` only makes the cookie stricter.
 */
function overHttps(req: Pick<Request, "secure" | "headers">): boolean {
  const forwarded = req.headers["x-forwarded-proto"];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim();
  return req.secure || first?.toLowerCase() === "https";
}

/** The cookies of a request, by name (first one wins). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!(name in out)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

/** The bearer token of an `Authorization` header, or undefined. */
function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

export interface AccessOptions {
  /** Undefined: no token is asked (loopback only: the server refuses to start otherwise). */
  token: string | undefined;
  /** Epoch ms (tests). @defaultValue Date.now */
  now?: () => number;
}

/** A login's outcome: the cookie set, the token refused, or the address throttled for `retryAfterMs`. */
type LoginOutcome = { ok: true } | { ok: false; retryAfterMs?: number };

export interface Access {
  /** The per-process key of session cookies and CSRF tokens. */
  readonly key: Buffer;
  /** Who the request is: `token` when it carried the token, `loopback` when none is asked, else undefined. */
  who(req: Request): "token" | "loopback" | undefined;
  /** Express middleware: lets a request with the token through, else 401 (a login link for pages). */
  require(req: Request, res: Response, next: NextFunction): void;
  /**
   * Sets the session cookie (12 hours; `Secure` over HTTPS) when `given` is the token and the
   * client's address is not throttled for failed logins.
   */
  login(given: string, req: Request, res: Response): LoginOutcome;
}

export function createAccess(options: AccessOptions): Access {
  const key = randomBytes(32);
  const { token } = options;
  const now = options.now ?? Date.now;
  const throttle = new LoginThrottle(now);
  const who = (req: Request): "token" | "loopback" | undefined => {
    if (token === undefined) return "loopback";
    const bearer = bearerToken(req.headers.authorization);
    if (bearer !== undefined && tokensEqual(bearer, token)) return "token";
    const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (cookie !== undefined && sessionValid(cookie, token, key, now())) return "token";
    return undefined;
  };
  return {
    key,
    who,
    require(req, res, next) {
      if (who(req) !== undefined) return next();
      res.set({ "Cache-Control": "no-store", "WWW-Authenticate": 'Bearer realm="kie-batch dashboard"' });
      if (req.path.startsWith("/api/") || req.method !== "GET") {
        res
          .status(401)
          .json({ error: "the dashboard needs its token (Authorization: Bearer, or log in at /login)" });
        return;
      }
      res.status(401).type("html").send(loginRedirect(req.originalUrl));
    },
    login(given, req, res) {
      if (token === undefined) return { ok: false };
      // The socket's address, or the client's behind the proxies the dashboard trusts (--trust-proxy).
      const address = req.ip ?? req.socket.remoteAddress ?? "unknown";
      const retryAfterMs = throttle.retryAfterMs(address);
      if (retryAfterMs > 0) return { ok: false, retryAfterMs };
      if (!tokensEqual(given, token)) {
        throttle.fail(address);
        return { ok: false };
      }
      const expiresAtS = Math.floor((now() + SESSION_TTL_MS) / 1000);
      res.cookie(SESSION_COOKIE, sessionCookie(token, key, expiresAtS), {
        httpOnly: true,
        sameSite: "strict",
        path: "/",
        maxAge: SESSION_TTL_MS,
        secure: overHttps(req),
      });
      return { ok: true };
    },
  };
}

function loginRedirect(target: string): string {
  const next = encodeURIComponent(target);
  return `<!doctype html><meta charset="utf-8"><title>kie-batch: log in</title><p>This dashboard needs its token: <a href="/login?next=${next}">log in</a>.</p>\n`;
}

/**
 * CSRF tokens for the action forms: an HMAC of the session under the per-process key. A page
 * carries it in a hidden field; a POST without the right one is refused, so another site cannot
 * make a logged-in browser press a button.
 */
export function csrfToken(key: Buffer, subject: string): string {
  return createHmac("sha256", key).update(`csrf:${subject}`).digest("base64url");
}

export function csrfValid(key: Buffer, subject: string, given: unknown): boolean {
  return typeof given === "string" && given.length > 0 && tokensEqual(given, csrfToken(key, subject));
}
