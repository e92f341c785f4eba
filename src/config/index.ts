export { ConfigError, loadConfig, requireApiKey } from "./load.js";
export type { Config } from "./schema.js";
