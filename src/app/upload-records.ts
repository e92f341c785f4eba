/**
 * The fleet's record of its input image uploads (worker/input-image.ts), one Redis string per file
 * under the deployment's own hash tag, `{<prefix>:uploads}:<sha256>` = `{downloadUrl, uploadedAt}`,
 * expiring with the upload: nothing to clean up, and any worker finds another's upload.
 */
import type { RedisClient } from "../redis/script.js";
import type { UploadRecord, UploadRecords } from "../worker/input-image.js";

export function redisUploadRecords(redis: RedisClient, queuePrefix: string): UploadRecords {
  const key = (sha256: string) => `{${queuePrefix}:uploads}:${sha256}`;
  return {
    async get(sha256) {
      const text = await redis.get(key(sha256));
      if (text === null) return undefined;
      try {
        const record = JSON.parse(text) as Partial<UploadRecord>;
        return typeof record.downloadUrl === "string" && typeof record.uploadedAt === "number"
          ? { downloadUrl: record.downloadUrl, uploadedAt: record.uploadedAt }
          : undefined;
      } catch {
        return undefined; // unreadable: upload again
      }
    },
    async put(sha256, record, ttlMs) {
      await redis.set(key(sha256), JSON.stringify(record), "PX", Math.max(1, Math.round(ttlMs)));
    },
    async delete(sha256) {
      await redis.del(key(sha256));
    },
  };
}
