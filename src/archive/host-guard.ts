import type { LookupAddress, LookupOptions } from "node:dns";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { canonicalHost, effectivePort, isHostAllowed } from "./allow-hosts.js";
import { DownloadError } from "./download-error.js";
import { classifyAddress, isPublicAddress } from "./ip-policy.js";

/**
 * The SSRF guard of the downloader: resolves a host once, refuses it unless every address is
 * public (or the host is allow-listed), and remembers the vetted addresses so the connection is
 * made to exactly those (no second DNS answer, no rebinding between check and connect).
 */
export class HostGuard {
  private readonly vetted = new Map<string, LookupAddress[]>();

  constructor(private readonly allowHosts: readonly string[]) {}

  /**
   * Resolves `url`'s host and checks every address; returns them. Throws `host_refused` (nothing
   * is sent to it) or `transient` (DNS failed). Rejects with the signal's reason if it aborts first.
   */
  async vet(url: URL, signal?: AbortSignal): Promise<LookupAddress[]> {
    const hostname = canonicalHost(url.hostname);
    const label = url.host;
    const allowed = isHostAllowed(this.allowHosts, hostname, effectivePort(url));
    const family = isIP(hostname);
    const addresses =
      family !== 0 ? [{ address: hostname, family }] : await this.resolve(hostname, label, signal);
    if (!allowed) {
      const refused = addresses.find((a) => !isPublicAddress(a.address));
      if (refused !== undefined) {
        const what = `${refused.address} (${classifyAddress(refused.address)})`;
        const via = family !== 0 ? `${what} is` : `it resolves to ${what},`;
        throw new DownloadError({
          code: "host_refused",
          message: `Refused to download from ${label}: ${via} not a public address; list the host in KIE_DOWNLOAD_HOSTS to allow it`,
          host: label,
        });
      }
    }
    this.vetted.set(hostname, addresses);
    return addresses;
  }

  /**
   * A `lookup` for net/tls `connect` that answers only with vetted addresses, and fails for a
   * host that was never vetted, so nothing reaches an unchecked address.
   */
  readonly lookup: ConnectLookup = (hostname, options, callback) =>
    answerWith(this.vetted.get(canonicalHost(hostname)) ?? [], "was not vetted for download")(
      hostname,
      options,
      callback,
    );

  private async resolve(hostname: string, label: string, signal?: AbortSignal): Promise<LookupAddress[]> {
    signal?.throwIfAborted();
    // getaddrinfo cannot be cancelled; stop waiting for it when the signal aborts.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const addresses = await Promise.race([lookup(hostname, { all: true }), aborted]);
      if (addresses.length === 0) throw Object.assign(new Error("no addresses"), { code: "ENODATA" });
      return addresses;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new DownloadError({
        code: "transient",
        message: `Could not resolve ${label}: ${(error as Error).message}`,
        host: label,
        cause: error,
      });
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** The `lookup` option of net/tls `connect`. */
type ConnectLookup = (
  hostname: string,
  options: LookupOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

/**
 * A `lookup` for net/tls `connect` that answers with `addresses` only, whatever it is asked (of the
 * family asked for, when one is); with none, ENOTFOUND saying the host `missing`.
 */
export function answerWith(addresses: readonly LookupAddress[], missing: string): ConnectLookup {
  return (hostname, options, callback) => {
    const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
    const usable = wanted === 0 ? [...addresses] : addresses.filter((a) => a.family === wanted);
    const first = usable[0];
    if (first === undefined) {
      const error: NodeJS.ErrnoException = new Error(`Host ${hostname} ${missing}`);
      error.code = "ENOTFOUND";
      callback(error, "");
      return;
    }
    if (options.all) callback(null, usable);
    else callback(null, first.address, first.family);
  };
}
