export { ConfigError, loadConfig, redactConfig, redactUrl, requireApiKey } from "./load.js";
export type { Config } from "./schema.js";
export { SECRET_KEYS } from "./schema.js";
