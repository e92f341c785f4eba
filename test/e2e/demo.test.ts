import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupPrefix, REDIS_URL, testRedis } from "../helpers/redis.js";

const CLI = join(import.meta.dirname, "..", "..", "bin", "kie-batch.js");
const PNG = [0x89, 0x50, 0x4e, 0x47];

function runDemo(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, "demo", ...args], {
      env: { ...process.env, LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("kie-batch demo (spawned)", () => {
  const dirs: string[] = [];
  const redis = testRedis();
  afterAll(async () => {
    await redis.quit();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function checkRun(output: string, stdout: string) {
    const prefix = /KIE_QUEUE_PREFIX=(\S+)/.exec(stdout)?.[1];
    expect(prefix).toMatch(/^demo-/);
    const [runDir] = await readdir(output);
    const results = (await readFile(join(output, runDir!, "results.jsonl"), "utf8")).trim().split("\n");
    return { prefix: prefix!, runDir: join(output, runDir!), results: results.map((l) => JSON.parse(l)) };
  }

  it("archives the 12 sample prompts to a folder and exits 0", { timeout: 60_000 }, async () => {
    const output = await mkdtemp(join(tmpdir(), "kie-demo-"));
    dirs.push(output);
    const { code, stdout, stderr } = await runDemo(["--output", output], { REDIS_URL });
    expect(stderr).not.toMatch(/error/i);
    expect(code).toBe(0);
    expect(stdout).toMatch(/12 of 12 images archived, 0 failed/);
    const { prefix, runDir, results } = await checkRun(output, stdout);
    expect(results).toHaveLength(12);
    const images = await readdir(join(runDir, "images", "demo"));
    expect(images.filter((f) => /\.(png|jpg)$/.test(f))).toHaveLength(12);
    for (const record of results) {
      expect(record.status).toBe("archived");
      const bytes = await readFile(record.location);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(record.sha256);
      if (record.location.endsWith(".png")) expect([...bytes.subarray(0, 4)]).toEqual(PNG);
    }
    const fox = results.find((r) => r.id === "fox-cn");
    expect(fox.prompt).toContain("红色狐狸");
    await cleanupPrefix(redis, prefix);
  });

  it("starts its own redis-server when nothing answers at REDIS_URL", { timeout: 60_000 }, async () => {
    const output = await mkdtemp(join(tmpdir(), "kie-demo-"));
    dirs.push(output);
    const { code, stdout } = await runDemo(["--output", output, "--rows", "3"], {
      REDIS_URL: "redis://127.0.0.1:1",
    });
    expect(stdout).toMatch(/started a private redis-server/);
    expect(code).toBe(0);
    expect(stdout).toMatch(/3 of 3 images archived/);
  });

  it("--edit runs image-to-image and edit over the sample images, each result named by its source", {
    timeout: 60_000,
  }, async () => {
    const output = await mkdtemp(join(tmpdir(), "kie-demo-"));
    dirs.push(output);
    const { code, stdout } = await runDemo(["--output", output, "--edit"], { REDIS_URL });
    expect(code).toBe(0);
    expect(stdout).toMatch(/7 of 7 images archived, 0 failed/);
    const { prefix, results } = await checkRun(output, stdout);
    const sample = join(import.meta.dirname, "..", "..", "examples", "images", "mug.png");
    const mugSha = createHash("sha256")
      .update(await readFile(sample))
      .digest("hex");
    expect(results.find((r) => r.id === "mug-white")).toMatchObject({
      status: "archived",
      model: "edit",
      sourceImage: sample,
      sourceSha256: mugSha,
    });
    expect(new Set(results.map((r) => r.model))).toEqual(
      new Set(["edit", "image-to-image", "text-to-image"]),
    );
    await cleanupPrefix(redis, prefix);
  });

  it("archives to s3rver with --s3", { timeout: 60_000 }, async () => {
    const output = await mkdtemp(join(tmpdir(), "kie-demo-"));
    dirs.push(output);
    const { code, stdout } = await runDemo(["--output", output, "--s3", "--rows", "4"], { REDIS_URL });
    expect(code).toBe(0);
    const { prefix, results } = await checkRun(output, stdout);
    expect(results.map((r) => r.location)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^s3:\/\/kie-demo\/demo\/.+\.(png|jpg)$/)]),
    );
    await cleanupPrefix(redis, prefix);
  });
});
