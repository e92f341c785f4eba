import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";

/** How long the abort of a failed probe upload may take. */
const ABORT_WAIT_MS = 10_000;

/**
 * Writes `Key` through a multipart upload of one small part, the requests an image larger than
 * the store's part size is put with (lib-storage's Upload), with the request checksums Upload
 * sends there: CRC32 asked on the create and computed for the part whenever the client computes
 * checksums by default (AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_SUPPORTED), each part's in the
 * complete. A store that takes a small PutObject but refuses these (some S3-compatibles refuse
 * the part's checksum) passes the plain probe and refuses every large image: without this, each
 * probe lifted the pause and the next large image paused archiving again, a minute apart.
 * An upload that fails is aborted, best effort. Throws what the client threw.
 */
export async function putOnePartUpload(
  client: S3Client,
  Bucket: string,
  Key: string,
  body: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  const options = signal ? { abortSignal: signal } : {};
  const byDefault = (await client.config.requestChecksumCalculation()) === "WHEN_SUPPORTED";
  const created = await client.send(
    new CreateMultipartUploadCommand({
      Bucket,
      Key,
      ContentType: "application/json",
      ...(byDefault ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
    }),
    options,
  );
  const UploadId = created.UploadId;
  if (!UploadId) throw new Error("CreateMultipartUpload answered without an UploadId");
  try {
    const part = await client.send(
      new UploadPartCommand({
        Bucket,
        Key,
        UploadId,
        PartNumber: 1,
        // No algorithm named, as Upload names none: the client's default (CRC32) applies.
        Body: body,
      }),
      options,
    );
    if (!part.ETag) throw new Error("UploadPart answered without an ETag");
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId,
        MultipartUpload: {
          Parts: [
            {
              PartNumber: 1,
              ETag: part.ETag,
              ...(part.ChecksumCRC32 ? { ChecksumCRC32: part.ChecksumCRC32 } : {}),
            },
          ],
        },
      }),
      options,
    );
  } catch (error) {
    // Best effort, within 10 s whatever the caller's signal (a shutdown still ends the upload):
    // one left behind (no s3:AbortMultipartUpload) is removed by the bucket's lifecycle rule for
    // incomplete uploads (README).
    await client
      .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), {
        abortSignal: AbortSignal.timeout(ABORT_WAIT_MS),
      })
      .catch(() => {});
    throw error;
  }
}
