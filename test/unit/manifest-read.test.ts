import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  detectFormat,
  ManifestOptionError,
  ManifestParseError,
  openManifest,
} from "../../src/manifest/index.js";
import { collect, type TempFiles, tempFiles, thrown } from "../fixtures/manifest/temp-files.js";

let files: TempFiles;
beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await files.cleanup();
});

describe("detectFormat", () => {
  it.each([
    ["prompts.csv", "csv"],
    ["PROMPTS.CSV", "csv"],
    ["dir.v2/prompts.json", "json"],
    ["prompts.jsonl", "jsonl"],
    ["prompts.ndjson", "jsonl"],
  ])("%s is %s", (path, format) => {
    expect(detectFormat(path)).toBe(format);
  });

  it("--format wins over the extension", () => {
    expect(detectFormat("prompts.txt", "jsonl")).toBe("jsonl");
    expect(detectFormat("prompts.csv", "json")).toBe("json");
  });

  it.each([
    ["prompts.txt", undefined, "cannot tell the format of prompts.txt (.txt)"],
    ["prompts", undefined, "(no extension)"],
    ["-", undefined, "cannot tell the format of stdin"],
    ["prompts.csv", "xlsx", 'unknown format "xlsx"'],
  ])("%s with --format %s is a clear error", (path, explicit, message) => {
    const run = () => detectFormat(path, explicit);
    expect(run).toThrow(ManifestOptionError);
    expect(run).toThrow(message);
  });
});

describe("openManifest", () => {
  it("reads a spooled stdin file under the name the user knows", async () => {
    const path = await files.write("spool-123", '{"prompt": "a"}\n');
    const manifest = await openManifest(path, { format: "jsonl", displayName: "-" });
    expect(manifest).toMatchObject({ path, file: "-", format: "jsonl" });
    expect(await collect(manifest.rows())).toHaveLength(1);
  });

  it("stdin without --format is an option error", async () => {
    const path = await files.write("spool-456", "prompt\na\n");
    expect(await thrown(() => openManifest(path, { displayName: "-" }))).toBeInstanceOf(ManifestOptionError);
  });

  it("a missing file or a directory is unreadable", async () => {
    const missing = await thrown(() => openManifest(`${files.dir}/nope.csv`));
    expect(missing).toBeInstanceOf(ManifestParseError);
    expect(missing).toMatchObject({ code: "unreadable" });
    expect(await thrown(() => openManifest(files.dir, { format: "csv" }))).toMatchObject({
      code: "unreadable",
    });
  });

  it("errors survive serialisation with their name and code", async () => {
    const error = (await thrown(() => openManifest(`${files.dir}/nope.csv`))) as ManifestParseError;
    const copy = JSON.parse(JSON.stringify(error));
    expect(copy).toMatchObject({
      name: "ManifestParseError",
      code: "unreadable",
      file: `${files.dir}/nope.csv`,
    });
  });
});
