/**
 * KIE's File Upload API, simulated: `POST /api/file-stream-upload` (multipart `file`,
 * `uploadPath`, optional `fileName`; a file of the same path is overwritten), answered
 * `{success, code, msg, data: {fileName, filePath, downloadUrl, fileSize, mimeType, uploadedAt}}`,
 * and the uploaded files served at their `downloadUrl` (`/uploads/<path>`) until they expire.
 * Auth and maintenance are the server's, as for every API call.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";

export const UPLOAD_PATH = "/api/file-stream-upload";
export const UPLOADS_PREFIX = "/uploads/";

interface StoredUpload {
  bytes: Buffer;
  mimeType: string;
  sha256: string;
  /** Real epoch ms. */
  expiresAt: number;
}

export interface UploadAnswer {
  httpStatus: number;
  body: Record<string, unknown>;
}

/** Multipart framing around the file: a little slack over the size limit before refusing unread. */
const FRAMING_SLACK_BYTES = 64 * 1024;

function refused(code: number, msg: string): UploadAnswer {
  return { httpStatus: 200, body: { success: false, code, msg } };
}

export class UploadStore {
  private readonly files = new Map<string, StoredUpload>();
  /** Uploads accepted. */
  count = 0;

  constructor(
    private readonly settings: {
      /** Base of download URLs, e.g. http://127.0.0.1:4321. */
      base: () => string;
      /** Real ms an upload lives. */
      ttlMs: number;
      maxBytes: number;
      now: () => number;
    },
  ) {}

  /** Reads and stores one multipart upload (the caller checked auth). */
  async accept(req: IncomingMessage): Promise<UploadAnswer> {
    const { maxBytes } = this.settings;
    const body = await readBounded(req, maxBytes + FRAMING_SLACK_BYTES);
    if (body === undefined) return refused(413, `file too large: at most ${maxBytes} bytes`);
    let form: FormData;
    try {
      form = await new Response(body, {
        headers: { "content-type": String(req.headers["content-type"] ?? "") },
      }).formData();
    } catch {
      return refused(400, "expected a multipart/form-data body");
    }
    const file = form.get("file");
    const uploadPath = form.get("uploadPath");
    if (!(file instanceof Blob)) return refused(400, "file is required");
    if (typeof uploadPath !== "string" || !/^[A-Za-z0-9._/-]{1,200}$/.test(uploadPath)) {
      return refused(400, "uploadPath is required (letters, digits, . _ - /)");
    }
    if (file.size > maxBytes) return refused(413, `file too large: at most ${maxBytes} bytes`);
    const given = form.get("fileName");
    const named = typeof given === "string" && given !== "" ? given : (file as File).name;
    const fileName = (named || "upload.bin").replace(/[^A-Za-z0-9._-]/g, "_");
    const bytes = Buffer.from(await file.arrayBuffer());
    const filePath = `${uploadPath.replace(/^\/+|\/+$/g, "")}/${fileName}`;
    const now = this.settings.now();
    const stored: StoredUpload = {
      bytes,
      mimeType: file.type || "application/octet-stream",
      sha256: createHash("sha256").update(bytes).digest("hex"),
      expiresAt: now + this.settings.ttlMs,
    };
    this.files.set(filePath, stored);
    this.count++;
    return {
      httpStatus: 200,
      body: {
        success: true,
        code: 200,
        msg: "File uploaded successfully",
        data: {
          fileName,
          filePath,
          downloadUrl: `${this.settings.base()}${UPLOADS_PREFIX}${filePath}`,
          fileSize: bytes.length,
          mimeType: stored.mimeType,
          uploadedAt: new Date(now).toISOString(),
        },
      },
    };
  }

  /** The live upload a `/uploads/...` path names, or undefined (unknown or expired). */
  get(pathname: string): StoredUpload | undefined {
    const stored = this.files.get(pathname.slice(UPLOADS_PREFIX.length));
    return stored && this.settings.now() < stored.expiresAt ? stored : undefined;
  }

  /** The live upload behind a download URL of this simulator, by its path; for create's image_url. */
  byUrl(url: string): StoredUpload | undefined {
    const base = this.settings.base();
    return url.startsWith(`${base}${UPLOADS_PREFIX}`) ? this.get(url.slice(base.length)) : undefined;
  }

  /** Makes every upload expire now (tests: "the upload expired before the create"). */
  expireAll(): void {
    const now = this.settings.now();
    for (const stored of this.files.values()) stored.expiresAt = Math.min(stored.expiresAt, now);
  }
}

/** The body, or undefined when it is larger than `limit` (drained, so the client reads our answer). */
async function readBounded(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  return size > limit ? undefined : Buffer.concat(chunks);
}
