/**
 * The one rule for URLs that may carry credentials (REDIS_URL above all): what counts as a secret
 * in a URL, and how a URL is shown without it. Config, the app, the demo, alerts and log lines all
 * go through here, so a URL is never masked one way in a message and another way in a log.
 */

/**
 * Query parameters whose values are treated as secrets (`?password=...`, `?token=...`), and the
 * signatures and credentials of presigned URLs (S3's `X-Amz-Signature`, `X-Amz-Credential` and
 * `X-Amz-Security-Token`, GCS's `X-Goog-Signature`, Azure's `sig`).
 */
const SECRET_PARAM = /pass|secret|token|auth|signature|credential|^sig$/i;
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The URL with its password (and any password-like query parameter) replaced by `***`, for
 * messages and logs; no trailing slash. A URL without a scheme is read as `redis://`. Unparseable
 * input has anything between `//` and `@` masked.
 */
export function redactUrl(url: string): string {
  const hasScheme = SCHEME.test(url);
  try {
    const parsed = new URL(hasScheme ? url : `redis://${url}`);
    if (parsed.password) parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAM.test(key)) parsed.searchParams.set(key, "***");
    }
    const text = parsed.toString().replace(/\/$/, "");
    return hasScheme ? text : text.slice("redis://".length);
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/**
 * A URL a user gave (an input image's), as results, sidecars and pages show it: with its
 * credentials masked as `redactUrl` does, and exactly as given when it carries none.
 */
export function maskUrlCredentials(url: string): string {
  return urlSecrets(url).length > 0 ? redactUrl(url) : url;
}

/**
 * A row's parameters as results, sidecars and pages show them: an `image_url` that carries a
 * credential (a presigned URL's `X-Amz-Signature`, a `token` in its query) with it masked; the
 * same object when there is nothing to mask. The row keeps the URL whole: KIE needs it.
 */
export function shownParams<T extends Readonly<Record<string, unknown>>>(params: T): T {
  const url = params.image_url;
  if (typeof url !== "string" || maskUrlCredentials(url) === url) return params;
  return { ...params, image_url: maskUrlCredentials(url) };
}

/**
 * The secret values a URL carries (its decoded password, password-like query values): what text
 * that may quote them (a driver's error, an alert) must have scrubbed.
 */
export function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(SCHEME.test(url) ? url : `redis://${url}`);
    const secrets = parsed.password ? [decodeURIComponent(parsed.password)] : [];
    for (const [key, value] of parsed.searchParams) {
      if (SECRET_PARAM.test(key) && value) secrets.push(value);
    }
    return secrets;
  } catch {
    // Unparseable: no client could have used a password from it either.
    return [];
  }
}

/** `text` with every secret of `url` of at least `minChars` characters replaced by `***`. */
export function scrubUrlSecrets(text: string, url: string, minChars = 3): string {
  return urlSecrets(url)
    .filter((secret) => secret.length >= minChars)
    .reduce((out, secret) => out.split(secret).join("***"), text);
}
