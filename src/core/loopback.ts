/**
 * Names of this machine, for servers that answer only to it: the dashboard without a token and
 * the admin port on loopback refuse a `Host` that is not one (DNS rebinding: a page of another
 * site whose name was rebound to 127.0.0.1 sends its own name).
 */
import { BlockList, isIP } from "node:net";

/** ::1 and IPv4-mapped 127.0.0.0/8, however an IPv6 address is spelt (`0:0:0:0:0:0:0:1`). */
const LOOPBACK_V6 = new BlockList();
LOOPBACK_V6.addAddress("::1", "ipv6");
LOOPBACK_V6.addSubnet("::ffff:127.0.0.0", 104, "ipv6");

/** True for 127.0.0.0/8, ::1 (any spelling, bracketed or not) and `localhost`: addresses only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(bare) === 6) return LOOPBACK_V6.check(bare, "ipv6");
  return isIP(bare) === 4 && bare.startsWith("127.");
}

/** True for a `Host` header naming this machine: `localhost`, 127.x.x.x or `[::1]`, with or without a port. */
export function isLoopbackHostHeader(header: string | undefined): boolean {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::\d{1,5})?$/.exec((header ?? "").trim().toLowerCase());
  if (!match) return false;
  return isLoopbackHost(match[1]!);
}
