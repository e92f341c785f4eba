/**
 * Names of this machine, for servers that answer only to it: the dashboard without a token and
 * the admin port on loopback refuse a `Host` that is not one (DNS rebinding: a page of another
 * site whose name was rebound to 127.0.0.1 sends its own name).
 */
import { isIP } from "node:net";

/** True for 127.0.0.0/8, ::1 and `localhost`: addresses only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1" || host === "[::1]") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** True for a `Host` header naming this machine: `localhost`, 127.x.x.x or `[::1]`, with or without a port. */
export function isLoopbackHostHeader(header: string | undefined): boolean {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::\d{1,5})?$/.exec((header ?? "").trim().toLowerCase());
  if (!match) return false;
  return isLoopbackHost(match[1]!);
}
