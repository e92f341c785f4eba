/**
 * An HTTP proxy in front of a real S3 (s3rver) on a free loopback port: `intercept` answers a
 * request itself (returns true) or lets it pass through untouched. The S3 look-alikes that refuse
 * (refusing-s3.ts, checksum-refusing-s3.ts) are this proxy with their own `intercept`.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface S3Proxy {
  /** `http://127.0.0.1:<port>`: an S3 endpoint. */
  endpoint: string;
  close(): Promise<void>;
}

export async function startS3Proxy(
  target: string,
  intercept: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<S3Proxy> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    if (intercept(req, res)) return;
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
    async close() {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closing;
    },
  };
}

/** Answers once the request body is read (the SDK is still sending it): an S3 error, or a bare status. */
export function answerAfterBody(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  xml?: string,
): void {
  req.resume();
  req.on("end", () => {
    if (xml === undefined) {
      res.writeHead(status, { "content-length": "0" }).end();
      return;
    }
    res
      .writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(xml) })
      .end(xml);
  });
}
