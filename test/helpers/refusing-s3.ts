/**
 * An S3 endpoint that can refuse: an HTTP proxy in front of a real S3 (s3rver) that, while told
 * to, answers every request as S3 does when it refuses the credential or the permission (or as
 * MinIO does when its drives are full), and otherwise passes requests through untouched. For
 * store-outage tests: a bucket whose policy denies, a rotated key, a bare 403 from a gateway, a
 * full MinIO, then the operator's fix.
 */
import { answerAfterBody, startS3Proxy } from "./s3-proxy.js";

/**
 * How the store refuses: an S3 error code in an XML body (403; MinIO's full drives: 507), or a
 * 403 with no body at all.
 */
export type Refusal =
  | "AccessDenied"
  | "InvalidAccessKeyId"
  | "SignatureDoesNotMatch"
  | "bare-403"
  | "XMinioStorageFull"
  /** An S3-compatible refusing the AWS SDK's request checksums (400). */
  | "XAmzContentSHA256Mismatch";

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
  let refusal: Refusal | null = null;
  let only: readonly string[] | undefined;
  let refused = 0;
  const proxy = await startS3Proxy(target, (req, res) => {
    if (refusal === null || (only !== undefined && !only.includes(req.method ?? ""))) return false;
    refused++;
    // A HEAD answer never has a body, so S3 refuses one with a bare 403 too.
    const bare = refusal === "bare-403" || req.method === "HEAD";
    const status =
      refusal === "XMinioStorageFull" ? 507 : refusal === "XAmzContentSHA256Mismatch" ? 400 : 403;
    answerAfterBody(req, res, status, bare ? undefined : errorXml(refusal));
    return true;
  });
  return {
    endpoint: proxy.endpoint,
    refuse(next, methods) {
      refusal = next;
      only = methods;
    },
    get refused() {
      return refused;
    },
    close: () => proxy.close(),
  };
}
