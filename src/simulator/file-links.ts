/**
 * Result URLs. An original URL, /files/<taskId>/<n>.<ext>, lives as long as the task's files;
 * a download-url link adds `expires` (real epoch ms) and an HMAC `token` over path and expiry,
 * so it needs no state of its own and cannot be forged or extended by a client.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export interface FileRef {
  taskId: string;
  index: number;
  ext: "png" | "jpg";
}

export interface ParsedFileUrl extends FileRef {
  /** Present for a download-url link. */
  signed?: { expires: number; valid: boolean };
}

const FILE_PATH = /^\/files\/([A-Za-z0-9_-]+)\/(\d+)\.(png|jpg)$/;

export class FileLinks {
  private readonly secret = randomBytes(32);
  private readonly acceptedHosts: Set<string>;

  constructor(
    private readonly publicHost: string,
    private readonly port: number,
  ) {
    // The listener is 127.0.0.1 whatever host name the URLs carry, so every loopback spelling
    // of this simulator counts as "ours" for download-url.
    this.acceptedHosts = new Set([publicHost, "127.0.0.1", "localhost"].map((host) => `${host}:${port}`));
  }

  private get base(): string {
    return `http://${this.publicHost}:${this.port}`;
  }

  original(ref: FileRef): string {
    return `${this.base}${pathOf(ref)}`;
  }

  signed(ref: FileRef, expires: number): string {
    return `${this.base}${pathOf(ref)}?expires=${expires}&token=${this.token(ref, expires)}`;
  }

  /** Parses a request path and query; undefined when it names no file. */
  parse(pathname: string, query: URLSearchParams): ParsedFileUrl | undefined {
    const match = FILE_PATH.exec(pathname);
    if (!match) return undefined;
    const ref: ParsedFileUrl = { taskId: match[1]!, index: Number(match[2]), ext: match[3] as "png" | "jpg" };
    const token = query.get("token");
    const expiresText = query.get("expires");
    if (token !== null || expiresText !== null) {
      const expires = Number(expiresText);
      const expected = Buffer.from(this.token(ref, expires));
      const given = Buffer.from(token ?? "");
      const valid =
        Number.isFinite(expires) && given.length === expected.length && timingSafeEqual(given, expected);
      ref.signed = { expires, valid };
    }
    return ref;
  }

  /** Parses a full URL handed to download-url; undefined unless it is one of this simulator's files. */
  parseUrl(url: string): ParsedFileUrl | undefined {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return undefined;
    }
    if (parsed.protocol !== "http:" || !this.acceptedHosts.has(parsed.host)) return undefined;
    return this.parse(parsed.pathname, parsed.searchParams);
  }

  private token(ref: FileRef, expires: number): string {
    return createHmac("sha256", this.secret)
      .update(`${pathOf(ref)}:${expires}`)
      .digest("base64url")
      .slice(0, 32);
  }
}

function pathOf(ref: FileRef): string {
  return `/files/${ref.taskId}/${ref.index}.${ref.ext}`;
}
