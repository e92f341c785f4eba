/**
 * `kie-batch enqueue --dry-run` with image-to-image and edit rows, spawned: the deployment's API
 * flavour, --allow-paths and KIE_PRICES as a user sets them (no Redis needed for a dry run).
 */
import { spawn } from "node:child_process";
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TempFiles, tempFiles } from "../fixtures/manifest/temp-files.js";
import { type ChildOutput, childOutput } from "../helpers/child-output.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kie-batch.js");
const MUG = join(import.meta.dirname, "..", "..", "examples", "images", "mug.png");
let files: TempFiles;
let manifest: string;
let outside: string;

function kieBatch(args: string[], env: Record<string, string> = {}): Promise<ChildOutput> {
  // A Redis that never answers: the dry run goes on without it.
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, REDIS_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return childOutput(child);
}

beforeAll(async () => {
  files = await tempFiles();
  outside = join(files.dir, "photos");
  await mkdir(join(files.dir, "shoot"));
  await mkdir(outside);
  await copyFile(MUG, join(outside, "mug.png"));
  manifest = await files.write(
    "shoot/catalogue.csv",
    "id,model,prompt,image_path\ncover,,a red mug on linen,\nstudio,edit,the mug on white,../photos/mug.png\n",
  );
});
afterAll(() => files.cleanup());

describe("kie-batch enqueue with image modes", () => {
  it("refuses an edit row on the qwen flavour and a path outside the manifest's folder, naming each fix", async () => {
    const run = await kieBatch(["enqueue", manifest, "--dry-run", "--json"]);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as { invalid: { line: number; error: string }[] };
    expect(summary.invalid.map((entry) => entry.error)).toEqual([
      expect.stringContaining('model: model "edit" needs KIE\'s market API: set KIE_API_FLAVOR=jobs'),
      expect.stringContaining(
        'image_path: "../photos/mug.png" is outside the manifest\'s folder (name its folder with --allow-paths to use it)',
      ),
    ]);
  });

  it("with the jobs flavour, --allow-paths and KIE_PRICES, the row is valid and estimated at its price", async () => {
    const run = await kieBatch(["enqueue", manifest, "--dry-run", "--json", "--allow-paths", outside], {
      KIE_API_FLAVOR: "jobs",
      KIE_PRICES: "edit=5",
    });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      total: 2,
      valid: 2,
      invalid: [],
      estimatedCredits: 8 + 5,
    });
  });

  it("a bad KIE_PRICES entry is a usage error before the file is read", async () => {
    const run = await kieBatch(["enqueue", manifest, "--dry-run"], { KIE_PRICES: "edit=cheap" });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Invalid KIE_PRICES entry "edit=cheap"');
  });
});
