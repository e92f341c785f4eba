import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll } from "vitest";
import { type RunningS3rver, startS3rver } from "./s3rver.js";

export interface S3rverContext {
  s3: RunningS3rver;
  /** A client of the s3rver, for the test's own reads and writes. */
  client: S3Client;
}

/**
 * An s3rver for the file, with the SDK's default credential chain (the worker's store takes it,
 * as in production) pointed at it through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, both restored
 * after the file. `secretAccessKey` replaces the secret the worker sees (s3rver does not check it).
 * Fields are live from the file's first test on.
 */
export function s3rverContext(options: { secretAccessKey?: string } = {}): S3rverContext {
  const ctx = {} as S3rverContext;
  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  beforeAll(async () => {
    ctx.s3 = await startS3rver();
    ctx.client = new S3Client(ctx.s3.clientOptions);
    process.env.AWS_ACCESS_KEY_ID = ctx.s3.clientOptions.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY =
      options.secretAccessKey ?? ctx.s3.clientOptions.credentials.secretAccessKey;
  });
  afterAll(async () => {
    ctx.client?.destroy();
    await ctx.s3?.close();
    for (const [name, value] of [
      ["AWS_ACCESS_KEY_ID", savedEnv.id],
      ["AWS_SECRET_ACCESS_KEY", savedEnv.secret],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  return ctx;
}
