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

describe("errors that quote a Redis command", () => {
  /** What ioredis rejects with when the server refuses AUTH (DataHandler: `err.command`). */
  function authRefused(password: string) {
    const error = new Error("WRONGPASS invalid username-password pair or user is disabled.");
    error.name = "ReplyError";
    Object.assign(error, { command: { name: "auth", args: [password] } });
    return error;
  }

  it("an AUTH refused on a reconnect is logged without the password, with the command's name", () => {
    const { log, text } = captured();
    log.error({ err: authRefused("hunter2-SECRET") }, "worker error");
    expect(text()).toContain("WRONGPASS");
    expect(text()).toContain('"name":"auth"');
    expect(text()).not.toContain("hunter2");
  });

  it("nor through a Cluster's last node error, an AggregateError or a child logger", () => {
    const { log, text } = captured();
    const clusterFailed = Object.assign(new Error("Failed to refresh slots cache."), {
      lastNodeError: authRefused("hunter2-SECRET"),
    });
    log.child({ stage: "poll" }).error({ err: clusterFailed }, "cluster");
    log.error({ err: new AggregateError([authRefused("hunter3-SECRET")], "closing failed") }, "close");
    expect(text()).toContain("Failed to refresh slots cache.");
    expect(text()).not.toContain("SECRET");
  });

  it("leaves the error itself as it was (other handlers may still read it)", () => {
    const { log } = captured();
    const error = authRefused("hunter2-SECRET");
    log.error({ err: error }, "worker error");
    expect((error as unknown as { command: { args: string[] } }).command.args).toEqual(["hunter2-SECRET"]);
  });
});
