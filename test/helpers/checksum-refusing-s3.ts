/**
 * An S3-compatible that does not implement checksums on copies: an HTTP proxy in front of s3rver
 * answering a CopyObject that carries any `x-amz-checksum-*` header (or `x-amz-sdk-checksum-*`)
 * with 400 InvalidArgument, as some S3-compatibles do, and passing everything else through. It
 * records the headers of every copy it sees.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface ChecksumRefusingS3 {
  /** `http://127.0.0.1:<port>`: an S3 endpoint. */
  endpoint: string;
  /** The headers of each CopyObject request, refused or not, in order. */
  readonly copies: IncomingHttpHeaders[];
  /** Copies refused so far. */
  readonly refused: number;
  close(): Promise<void>;
}

const REFUSAL = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code><Message>x-amz-checksum-algorithm is not supported (test)</Message><RequestId>test</RequestId></Error>`;

export async function startChecksumRefusingS3(target: string): Promise<ChecksumRefusingS3> {
  const upstream = new URL(target);
  const copies: IncomingHttpHeaders[] = [];
  let refused = 0;
  const server = createServer((req, res) => {
    if (req.method === "PUT" && req.headers["x-amz-copy-source"] !== undefined) {
      copies.push(req.headers);
      if (Object.keys(req.headers).some((name) => /^x-amz-(sdk-)?checksum-/.test(name))) {
        refused++;
        req.resume();
        req.on("end", () => {
          res
            .writeHead(400, {
              "content-type": "application/xml",
              "content-length": Buffer.byteLength(REFUSAL),
            })
            .end(REFUSAL);
        });
        return;
      }
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
    copies,
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
