import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { ManifestFormat } from "../manifest/index.js";
import { makeTempFolder } from "./temp-folders.js";

/** A copy of a stream in a private temporary folder; `remove` deletes both. */
export interface SpooledFile {
  path: string;
  remove(): Promise<void>;
}

/**
 * Copies `input` (stdin) to a temporary file, so the manifest can be read twice: validated whole
 * before anything is written, then enqueued. Disk, not memory: a million rows stay cheap.
 */
export async function spoolToTempFile(input: NodeJS.ReadableStream, dir = tmpdir()): Promise<SpooledFile> {
  const folder = await makeTempFolder(dir, "stdin");
  const path = join(folder.path, "stdin");
  const remove = () => folder.remove();
  try {
    await pipeline(input, createWriteStream(path, { flags: "wx", mode: 0o600 }));
  } catch (error) {
    await remove();
    throw error;
  }
  return { path, remove };
}

const SNIFF_BYTES = 64 * 1024;

/**
 * The format of a file with no name to go by (stdin), from its first bytes: `[` starts JSON; `{`
 * starts JSONL when the first line is a whole object by itself (and not `{"rows": ...}`), else
 * JSON; anything else is CSV. `--format` overrides the guess.
 */
export async function guessFormat(path: string): Promise<ManifestFormat> {
  const handle = await open(path, "r");
  let text: string;
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    text = buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
  const start = text.replace(/^\uFEFF/, "").trimStart();
  if (start.startsWith("[")) return "json";
  if (!start.startsWith("{")) return "csv";
  const newline = start.indexOf("\n");
  const firstLine = newline === -1 ? start : start.slice(0, newline);
  try {
    const value: unknown = JSON.parse(firstLine);
    const isRowsWrapper = typeof value === "object" && value !== null && "rows" in value;
    return isRowsWrapper ? "json" : "jsonl";
  } catch {
    return "json";
  }
}
