import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveS3rver } from "../../src/demo/s3.js";
import { startMinioContainer, USE_CONTAINERS } from "./containers.js";

export interface RunningS3rver {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** A bucket that exists. */
  bucket: string;
  /** Options for `new S3Client(...)` / `createS3Store(...)` that reach this server. */
  clientOptions: {
    endpoint: string;
    region: string;
    forcePathStyle: true;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  close(): Promise<void>;
}

/**
 * Starts s3rver in-process on a random loopback port, storing into a fresh temporary
 * directory that `close()` removes. Tests need AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED
 * (set by vitest.config.ts), see DESIGN.md.
 */
export async function startS3rver(options: { bucket?: string } = {}): Promise<RunningS3rver> {
  const bucket = options.bucket ?? "test-bucket";
  // KIE_TESTCONTAINERS=1: the same tests against a real MinIO (needs a Docker engine).
  if (USE_CONTAINERS) return startMinioContainer(bucket);
  const directory = await mkdtemp(join(tmpdir(), "kie-s3rver-"));
  const server = await serveS3rver({ directory, bucket });
  return {
    ...s3rverAccess(server.endpoint, bucket),
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

function s3rverAccess(endpoint: string, bucket: string): Omit<RunningS3rver, "close"> {
  return {
    endpoint,
    bucket,
    clientOptions: {
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    },
  };
}

export interface RestartableS3rver extends RunningS3rver {
  /** Stops serving: connections are cut, new ones refused. The stored objects stay. */
  stop(): Promise<void>;
  /** Serves again on the same port from the same directory. */
  restart(): Promise<void>;
}

/** `startS3rver` that can go away and come back (an S3 outage), keeping port and objects. */
export async function startRestartableS3rver(options: { bucket?: string } = {}): Promise<RestartableS3rver> {
  const bucket = options.bucket ?? "test-bucket";
  const directory = await mkdtemp(join(tmpdir(), "kie-s3rver-"));
  let port = 0;
  let server: Awaited<ReturnType<typeof serveS3rver>> | undefined;
  const start = async () => {
    server = await serveS3rver({ directory, bucket, port });
    port = server.port;
  };
  // In-flight uploads and idle keep-alive sockets alike: an outage cuts them.
  const stop = async () => {
    const running = server;
    server = undefined;
    await running?.close();
  };
  await start();
  return {
    ...s3rverAccess(`http://127.0.0.1:${port}`, bucket),
    stop,
    restart: start,
    async close() {
      await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
