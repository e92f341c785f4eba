/**
 * Opt-in: with KIE_TESTCONTAINERS=1 (and a Docker engine), tests run against Redis and MinIO
 * containers started by testcontainers instead of the local redis-server and in-process s3rver.
 * Nothing here runs otherwise, so the default suite needs no Docker.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

export const USE_CONTAINERS = process.env.KIE_TESTCONTAINERS === "1";

export async function startRedisContainer(): Promise<{ url: string; stop(): Promise<void> }> {
  const { RedisContainer } = await import("@testcontainers/redis");
  const container = await new RedisContainer("redis:7-alpine").start();
  return { url: container.getConnectionUrl(), stop: async () => void (await container.stop()) };
}

export async function startMinioContainer(bucket: string) {
  const { MinioContainer } = await import("@testcontainers/minio");
  const container = await new MinioContainer("minio/minio:latest").start();
  const clientOptions = {
    endpoint: container.getConnectionUrl(),
    region: "us-east-1",
    forcePathStyle: true as const,
    credentials: { accessKeyId: container.getUsername(), secretAccessKey: container.getPassword() },
  };
  const client = new S3Client(clientOptions);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return {
    endpoint: clientOptions.endpoint,
    bucket,
    clientOptions,
    close: async () => void (await container.stop()),
  };
}
