export {
  type ArchiveFromUrlOptions,
  archiveFromUrl,
  isRetryableArchiveError,
} from "./copy.js";

export { createDownloadAgent } from "./download-agent.js";
export {
  DownloadError,
  isDownloadError,
} from "./download-error.js";
export { createFolderStore } from "./folder-store.js";
export { createS3Store } from "./s3-store.js";
export {
  archivedImages,
  buildSidecar,
  imageKeyBase,
  objectMetadata,
  putSidecar,
  sidecarKey,
} from "./sidecar.js";
export {
  ArchiveStoreError,
  isStoreOutage,
} from "./store-error.js";
export type { SweepOutcome } from "./temp-folder.js";
export type { ArchiveStoreHead } from "./types.js";
