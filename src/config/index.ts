export { type ApiKeyEntry, apiKeysOf, requireApiKeys } from "./api-keys.js";
export { ConfigError, loadConfig, requireApiKey } from "./load.js";
export type { Config } from "./schema.js";
