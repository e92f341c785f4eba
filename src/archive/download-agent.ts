import { Agent, buildConnector } from "undici";
import { answerWith, HostGuard } from "./host-guard.js";

/** TCP (and TLS) connect of a download. */
const DEFAULT_CONNECT_MS = 10_000;

/**
 * One undici Agent for a worker's downloads (`DownloadImageOptions.dispatcher`): its connections
 * are kept alive and reused across downloads, and every new connection goes through the SSRF
 * guard first: the host (and port) is resolved and checked as `downloadImage` checks each hop,
 * and the socket is made to exactly the addresses that passed (no second DNS answer, so no
 * rebinding between check and connect). A connection is only ever made by this check; a kept one
 * goes on to the address it was vetted for. The caller closes it.
 */
export function createDownloadAgent(
  allowHosts: readonly string[],
  options: { connectMs?: number } = {},
): Agent {
  const guard = new HostGuard(allowHosts);
  const timeout = options.connectMs ?? DEFAULT_CONNECT_MS;
  const connect: buildConnector.connector = (target, callback) => {
    let url: URL;
    try {
      url = new URL(`${target.protocol}//${target.host}`);
    } catch (error) {
      callback(error as Error, null);
      return;
    }
    guard.vet(url).then(
      (addresses) => {
        // A connector per new connection (not per request), answering only with the vetted
        // addresses; an IP literal makes no lookup at all, and vet checked it.
        buildConnector({ timeout, lookup: answerWith(addresses, "has no vetted address of that family") })(
          target,
          callback,
        );
      },
      (error: Error) => callback(error, null),
    );
  };
  return new Agent({ connect });
}
