/** Recognises PNG and JPEG by their first bytes. Pure. */

export type ImageContentType = "image/png" | "image/jpeg";
export type ImageExtension = "png" | "jpg";

export interface ImageType {
  contentType: ImageContentType;
  ext: ImageExtension;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_SOI = Buffer.from([0xff, 0xd8, 0xff]);

/** How many leading bytes `sniffImageType` needs to decide; shorter bodies are not images. */
export const MAGIC_BYTES_NEEDED = PNG_SIGNATURE.length;

/** The image type `head` (at least MAGIC_BYTES_NEEDED bytes) starts with, or undefined. */
export function sniffImageType(head: Uint8Array): ImageType | undefined {
  if (head.length < MAGIC_BYTES_NEEDED) return undefined;
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    return { contentType: "image/png", ext: "png" };
  }
  if (bytes.subarray(0, JPEG_SOI.length).equals(JPEG_SOI)) {
    return { contentType: "image/jpeg", ext: "jpg" };
  }
  return undefined;
}
