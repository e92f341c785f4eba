export {
  type AllowHostEntry,
  canonicalHost,
  effectivePort,
  isHostAllowed,
  parseAllowHost,
} from "./allow-hosts.js";
export {
  type ArchivedImage,
  type ArchiveFromUrlOptions,
  archiveFromUrl,
  isRetryableArchiveError,
} from "./copy.js";
export {
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_MAX_REDIRECTS,
  type DownloadedImage,
  type DownloadImageOptions,
  type DownloadTimeouts,
  downloadImage,
  statusError,
} from "./download.js";
export {
  DownloadError,
  type DownloadErrorCode,
  type DownloadErrorOptions,
  isDownloadError,
} from "./download-error.js";
export { createFolderStore } from "./folder-store.js";
export type { ImageDigest } from "./image-stream.js";
export { type ImageContentType, type ImageExtension, type ImageType, sniffImageType } from "./image-type.js";
export { type AddressClass, classifyAddress, isPublicAddress } from "./ip-policy.js";
export { assertValidKey } from "./keys.js";
export { assertValidMetadata, MAX_METADATA_BYTES } from "./metadata.js";
export { probeStore, STORE_PROBE_KEY } from "./probe.js";
export { createS3Store, DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, type S3StoreOptions } from "./s3-store.js";
export {
  archivedImages,
  buildSidecar,
  JSON_CONTENT_TYPE,
  putJson,
  putSidecar,
  type Sidecar,
  type SidecarImage,
  type SidecarRow,
  sidecarKey,
} from "./sidecar.js";
export {
  ArchiveStoreError,
  type ArchiveStoreErrorCode,
  type ArchiveStoreErrorOptions,
  classifyStoreError,
  isArchiveStoreError,
  isRetryableStoreError,
  isStoreOutage,
} from "./store-error.js";
export type { ArchivePutOptions, ArchiveStore, ArchiveStoreHead } from "./types.js";
