import { mkdir } from "node:fs/promises";

/** An in-process s3rver for `demo --s3` (a dev dependency: present in a checkout after `npm ci`). */
export interface DemoS3 {
  endpoint: string;
  bucket: string;
  directory: string;
  /** Configuration that points the archive at it. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startDemoS3(directory: string): Promise<DemoS3> {
  await mkdir(directory, { recursive: true });
  const bucket = "kie-demo";
  const { endpoint, close } = await serveS3rver({ directory, bucket });
  // s3rver stores aws-chunked bodies with their trailer: send plain bodies (see DESIGN.md).
  process.env.AWS_REQUEST_CHECKSUM_CALCULATION ??= "WHEN_REQUIRED";
  process.env.AWS_ACCESS_KEY_ID = "S3RVER"; // s3rver's own credentials, in this process only
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
  return {
    endpoint,
    bucket,
    directory,
    env: { S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_FORCE_PATH_STYLE: "true", S3_REGION: "us-east-1" },
    close,
  };
}

/**
 * s3rver in this process on 127.0.0.1 (`port` 0: a free one), storing under `directory`, with
 * `bucket` created. `close()` also cuts idle keep-alive sockets, which would hold it open.
 */
export async function serveS3rver(options: {
  directory: string;
  bucket: string;
  port?: number;
}): Promise<{ endpoint: string; port: number; close(): Promise<void> }> {
  let S3rver: typeof import("s3rver").default;
  try {
    S3rver = (await import("s3rver")).default;
  } catch {
    throw new Error("s3rver is a dev dependency: run `npm ci` in a checkout");
  }
  const server = new S3rver({
    address: "127.0.0.1",
    port: options.port ?? 0,
    silent: true,
    directory: options.directory,
    configureBuckets: [{ name: options.bucket }],
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async close() {
      const closing = server.close();
      server.httpServer?.closeAllConnections();
      await closing;
    },
  };
}
