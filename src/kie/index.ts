/** The KIE client's public API. */
export { type AnswerContext, type RawAnswer, readAnswer } from "./answer.js";
export { createKieClient, KIE_CLIENT_DEFAULTS, type KieClient, type KieClientOptions } from "./client.js";
export * from "./errors.js";
export { FLAVOR_ENDPOINTS, JOBS_MODEL, marketInput, SHARED_ENDPOINTS, submitBody } from "./flavors.js";
export { normalizeRecord, toEpochMs } from "./normalize.js";
export * from "./rules.js";
export * from "./schemas.js";
export { createScrubber, REDACTED, type SafeCause, type Scrub, safeCause } from "./secrets.js";
export { fromTransportError, type TransportErrorContext } from "./transport-error.js";
export * from "./types.js";
