import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.js";

function problemOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.join("\n");
  }
  throw new Error("expected a ConfigError");
}

describe("settings that count something and must be at least 1", () => {
  it.each(["KIE_SUBMIT_ATTEMPTS", "KIE_SUBMIT_WINDOW"])("%s=0 is refused, naming the setting", (name) => {
    expect(problemOf({ [name]: "0" })).toContain(name);
    expect(problemOf({ [name]: "abc" })).toContain(name);
    expect(loadConfig({ [name]: "1" })[name as "KIE_SUBMIT_WINDOW"]).toBe(1);
  });
});
