export { redactUrl } from "../core/redact-url.js";
export { ConfigError, loadConfig, redactConfig, requireApiKey } from "./load.js";
export type { Config } from "./schema.js";
export { SECRET_KEYS } from "./schema.js";
