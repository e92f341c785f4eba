import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The project's own rule file, run against a small tree that breaks each rule once. The rules
// match `src/...` relative to where depcruise runs, so it runs from the fixture directory.
const root = fileURLToPath(new URL("../..", import.meta.url));
const config = `${root}.dependency-cruiser.cjs`;
const bin = `${root}node_modules/dependency-cruiser/bin/dependency-cruise.mjs`;
const fixture = `${root}test/fixtures/depcruise`;

/** Each `error <rule>: <from> → <to>` line of depcruise's `err` report (the one that sets the exit code). */
interface Cruise {
  code: number | null;
  violations: { rule: string; from: string }[];
  output: string;
}

function cruise(cwd: string): Promise<Cruise> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "src", "--config", config, "--output-type", "err"], {
      cwd,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code) => {
      const violations = [...output.matchAll(/^\s*error (\S+): (\S+)/gm)].map(([, rule, from]) => ({
        rule: rule!,
        from: from!,
      }));
      resolve({ code, violations, output });
    });
  });
}

describe("the dependency rule (.dependency-cruiser.cjs)", () => {
  it("fails on a tree that breaks each rule, naming the rule and the importing file", async () => {
    const { code, violations, output } = await cruise(fixture);

    expect(code, output).toBe(violations.length); // depcruise exits with its count of errors
    const found = violations.map((v) => `${v.rule}: ${v.from}`).sort();
    expect(found).toEqual([
      "layer-core: src/core/x.ts", // core imports worker
      "no-circular: src/kie/a.ts", // a.ts -> b.ts -> a.ts
      "not-to-dev-dep: src/config/dev.ts", // vitest from src/
      "pure-logic-no-infrastructure: src/worker/bad.ts", // import type from bullmq
      "simulator-stands-alone: src/simulator/server.ts", // simulator imports ledger
      "stage-logic-no-network: src/worker/net.ts", // a stage imports node:http
    ]);
    // What stays allowed: the webhook's HTTP server, and manifest's sideways grant to kie.
    expect(violations.some((v) => v.from === "src/worker/webhook.ts")).toBe(false);
    expect(violations.some((v) => v.from === "src/manifest/limits.ts")).toBe(false);
  });
});
