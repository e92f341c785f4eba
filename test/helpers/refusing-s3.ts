/**
 * An S3 endpoint that can refuse: an HTTP proxy in front of a real S3 (s3rver) that, while told
 * to, answers every request as S3 does when it refuses the credential or the permission, and
 * otherwise passes requests through untouched. For store-outage tests: a bucket whose policy
 * denies, a rotated key, a bare 403 from a gateway, then the operator's fix.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** How the store refuses: an S3 error code in an XML body, or a 403 with no body at all. */
export type Refusal = "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "bare-403";

export interface RefusingS3 {
  /** `http://127.0.0.1:<port>`: give it as S3_ENDPOINT. */
  endpoint: string;
  /**
   * Starts refusing requests this way (null: pass everything through): every request, or only
   * those of `methods` (a bucket policy that denies PutObject but allows GetObject).
   */
  refuse(refusal: Refusal | null, methods?: readonly string[]): void;
  /** Requests refused so far. */
  readonly refused: number;
  close(): Promise<void>;
}

function errorXml(code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code} (test)</Message><RequestId>test</RequestId></Error>`;
}

export async function startRefusingS3(target: string): Promise<RefusingS3> {
  const upstream = new URL(target);
  let refusal: Refusal | null = null;
  let only: readonly string[] | undefined;
  let refused = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (refusal !== null && (only === undefined || only.includes(req.method ?? ""))) {
      refused++;
      // Read the body first: the SDK is still sending it.
      req.resume();
      req.on("end", () => {
        // A HEAD answer never has a body, so S3 refuses one with a bare 403 too.
        if (refusal === "bare-403" || req.method === "HEAD") {
          res.writeHead(403, { "content-length": "0" }).end();
          return;
        }
        const body = errorXml(refusal ?? "AccessDenied");
        res
          .writeHead(403, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) })
          .end(body);
      });
      return;
    }
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    refuse(next, methods) {
      refusal = next;
      only = methods;
    },
    get refused() {
      return refused;
    },
    async close() {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closing;
    },
  };
}
