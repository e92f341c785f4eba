/** The KIE client's public API. */

export { createKieClient, type KieClient, type KieClientOptions } from "./client.js";
export * from "./errors.js";
export * from "./prices.js";
export * from "./rules.js";
export * from "./schemas.js";
export { modelOf, sourceImageOf } from "./source-image.js";
export * from "./types.js";
export { createUploadClient } from "./upload.js";
