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
  let S3rver: typeof import("s3rver").default;
  try {
    S3rver = (await import("s3rver")).default;
  } catch {
    throw new Error("demo --s3 needs the s3rver package (a dev dependency): run `npm ci` in a checkout");
  }
  await mkdir(directory, { recursive: true });
  const bucket = "kie-demo";
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver stores aws-chunked bodies with their trailer: send plain bodies (see DESIGN.md).
  process.env.AWS_REQUEST_CHECKSUM_CALCULATION ??= "WHEN_REQUIRED";
  process.env.AWS_ACCESS_KEY_ID = "S3RVER"; // s3rver's own credentials, in this process only
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
  return {
    endpoint,
    bucket,
    directory,
    env: { S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_FORCE_PATH_STYLE: "true", S3_REGION: "us-east-1" },
    async close() {
      const closing = server.close();
      server.httpServer?.closeAllConnections();
      await closing;
    },
  };
}
