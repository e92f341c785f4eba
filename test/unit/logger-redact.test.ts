/**
 * The second line of defence: an API key put into a log object by mistake is censored, whether
 * one key (KIE_API_KEY, apiKey), the list (KIE_API_KEYS, apiKeys) or its entries.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";

function captured() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString("utf8"));
      callback();
    },
  });
  return { log: createLogger({ level: "info", pretty: false, destination }), text: () => lines.join("") };
}

describe("log redaction", () => {
  it.each([
    ["KIE_API_KEY", { KIE_API_KEY: "sk-one-secret" }],
    ["KIE_API_KEYS", { KIE_API_KEYS: "sk-one-secret,sk-two-secret" }],
    ["a config's KIE_API_KEYS", { config: { KIE_API_KEYS: "@/etc/keys sk-one-secret" } }],
    ["apiKeys", { apiKeys: ["sk-one-secret", "sk-two-secret"] }],
    ["key entries", { apiKeys: [{ key: "sk-one-secret", account: "team", where: "KIE_API_KEYS entry 1" }] }],
  ])("%s is censored", (_name, object) => {
    const { log, text } = captured();
    log.info(object, "configured");
    expect(text()).toContain("configured");
    expect(text()).not.toContain("secret");
  });
});
