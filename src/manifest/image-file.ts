/**
 * A row's local input image (`image_path`): resolved against the manifest's folder, refused
 * outside it (and outside every `--allow-paths` folder), read once per distinct file, and named
 * by its sha256 (which the row id covers, so the same photo under two names is one row).
 *
 * Synchronous on purpose: the row validator is. A file used by many rows is read once while it
 * stays among the last CACHED_FILES ones used (the cache is by real path): memory stays flat when
 * every row of a million names a photo of its own.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { LIMITS } from "../kie/types.js";

/** The image types KIE takes as input, by their first bytes. */
const IMAGE_SIGNATURES: readonly { mimeType: string; matches: (head: Buffer) => boolean }[] = [
  { mimeType: "image/png", matches: (h) => h.subarray(0, 8).equals(Buffer.from("89504e470d0a1a0a", "hex")) },
  { mimeType: "image/jpeg", matches: (h) => h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff },
  {
    mimeType: "image/webp",
    matches: (h) =>
      h.subarray(0, 4).toString("latin1") === "RIFF" && h.subarray(8, 12).toString("latin1") === "WEBP",
  },
];

export type ImageFileCheck =
  | { ok: true; path: string; sha256: string; mimeType: string; bytes: number }
  | { ok: false; message: string };

export interface ImageFileRules {
  /** The manifest's folder: relative paths start here, and files must lie under it... */
  baseDir: string;
  /** ...or under one of these folders (`--allow-paths`). @defaultValue [] */
  allowPaths?: readonly string[];
  /** @defaultValue LIMITS.inputImageMaxBytes */
  maxBytes?: number;
  /** How many files' checks are kept (the last used). @defaultValue CACHED_FILES */
  cachedFiles?: number;
}

/** The MIME type of an image by its first bytes, or undefined for a type KIE does not take. */
export function sniffImageType(head: Buffer): string | undefined {
  return IMAGE_SIGNATURES.find((signature) => signature.matches(head))?.mimeType;
}

/** Distinct files whose check is kept (~300 B each): rows naming one file are usually near each other. */
const CACHED_FILES = 10_000;

/** Checks local images against `rules`, each real path read once while it is among the last used. */
export class ImageFiles {
  private readonly cache = new Map<string, ImageFileCheck>();
  private readonly roots: string[];

  constructor(private readonly rules: ImageFileRules) {
    this.roots = [rules.baseDir, ...(rules.allowPaths ?? [])].map((dir) => realOrResolved(dir));
  }

  check(written: string): ImageFileCheck {
    const path = resolve(this.rules.baseDir, written);
    let real: string;
    try {
      real = realpathSync(path);
    } catch (error) {
      return { ok: false, message: `cannot read ${JSON.stringify(written)}: ${reason(error)}` };
    }
    if (!this.roots.some((root) => isInside(real, root))) {
      return {
        ok: false,
        message: `${JSON.stringify(written)} is outside the manifest's folder (name its folder with --allow-paths to use it)`,
      };
    }
    let result = this.cache.get(real);
    if (result === undefined) {
      result = this.read(real, written);
      // The least recently used goes (a Map keeps insertion order; a hit moves to the end).
      if (this.cache.size >= (this.rules.cachedFiles ?? CACHED_FILES))
        this.cache.delete(this.cache.keys().next().value!);
    } else {
      this.cache.delete(real);
    }
    this.cache.set(real, result);
    return result;
  }

  private read(real: string, written: string): ImageFileCheck {
    const maxBytes = this.rules.maxBytes ?? LIMITS.inputImageMaxBytes;
    try {
      const stat = statSync(real);
      if (!stat.isFile()) return { ok: false, message: `${JSON.stringify(written)} is not a file` };
      if (stat.size > maxBytes) {
        return {
          ok: false,
          message: `expected an image of at most ${maxBytes} bytes, found ${stat.size} bytes`,
        };
      }
      const bytes = readWhole(real, stat.size);
      const mimeType = sniffImageType(bytes);
      if (mimeType === undefined) {
        return { ok: false, message: `expected a PNG, JPEG or WebP image, found another kind of file` };
      }
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      return { ok: true, path: real, sha256, mimeType, bytes: bytes.length };
    } catch (error) {
      return { ok: false, message: `cannot read ${JSON.stringify(written)}: ${reason(error)}` };
    }
  }
}

function readWhole(path: string, size: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const read = readSync(fd, buffer, at, size - at, at);
      if (read === 0) break;
      at += read;
    }
    return buffer.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}

function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function realOrResolved(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir);
  }
}

function reason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  return typeof code === "string" ? code : "unreadable";
}
