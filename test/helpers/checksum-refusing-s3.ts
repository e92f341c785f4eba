/**
 * An S3-compatible that does not implement checksums on copies: an HTTP proxy in front of s3rver
 * answering a CopyObject that carries any `x-amz-checksum-*` header (or `x-amz-sdk-checksum-*`)
 * with 400 InvalidArgument, as some S3-compatibles do, and passing everything else through. It
 * records the headers of every copy it sees.
 */
import type { IncomingHttpHeaders } from "node:http";
import { answerAfterBody, startS3Proxy } from "./s3-proxy.js";

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
  const copies: IncomingHttpHeaders[] = [];
  let refused = 0;
  const proxy = await startS3Proxy(target, (req, res) => {
    if (req.method !== "PUT" || req.headers["x-amz-copy-source"] === undefined) return false;
    copies.push(req.headers);
    if (!Object.keys(req.headers).some((name) => /^x-amz-(sdk-)?checksum-/.test(name))) return false;
    refused++;
    answerAfterBody(req, res, 400, REFUSAL);
    return true;
  });
  return {
    endpoint: proxy.endpoint,
    copies,
    get refused() {
      return refused;
    },
    close: () => proxy.close(),
  };
}
