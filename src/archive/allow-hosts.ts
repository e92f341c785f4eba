/**
 * The download allow-list: entries `host` (any port) or `host:port` (that port only); IPv6 as
 * `[::1]` or `[::1]:8080`. A listed host may resolve to a private or loopback address (the KIE
 * base URL's host, a simulator, a CDN inside the VPC). Pure.
 */

export interface AllowHostEntry {
  /** Canonical host as WHATWG URL spells it: lower case, punycode, IPv6 without brackets. */
  host: string;
  /** Only this port, or any port when undefined. */
  port: number | undefined;
}

/** Canonical hostname, the way `new URL(...).hostname` gives it but without IPv6 brackets. */
export function canonicalHost(host: string): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const literal = bare.includes(":") ? `[${bare}]` : bare;
  let hostname: string;
  try {
    hostname = new URL(`http://${literal}/`).hostname;
  } catch {
    throw new Error(`Invalid host ${JSON.stringify(host)}`);
  }
  return hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
}

/** Parses one allow-list entry; throws on a malformed one so a typo fails at start-up. */
export function parseAllowHost(entry: string): AllowHostEntry {
  const text = entry.trim();
  let host = text;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw new Error(`Invalid allow-host entry ${JSON.stringify(entry)}: missing "]"`);
    host = text.slice(0, close + 1);
    const after = text.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) throw new Error(`Invalid allow-host entry ${JSON.stringify(entry)}`);
      portText = after.slice(1);
    }
  } else if (text.split(":").length === 2) {
    [host = "", portText] = text.split(":");
  }
  // More than one colon without brackets is a bare IPv6 address: any port.
  let port: number | undefined;
  if (portText !== undefined) {
    port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new Error(`Invalid allow-host entry ${JSON.stringify(entry)}: bad port`);
    }
  }
  if (host === "") throw new Error(`Invalid allow-host entry ${JSON.stringify(entry)}: empty host`);
  return { host: canonicalHost(host), port };
}

/** True when `hostname` (as in `URL.hostname`) on `port` (the effective port) is listed. */
export function isHostAllowed(allowHosts: readonly string[], hostname: string, port: number): boolean {
  const host = canonicalHost(hostname);
  return allowHosts.some((entry) => {
    const allowed = parseAllowHost(entry);
    return allowed.host === host && (allowed.port === undefined || allowed.port === port);
  });
}

/** The port a URL really connects to. */
export function effectivePort(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}
