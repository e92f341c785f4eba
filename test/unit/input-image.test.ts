import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { KieError } from "../../src/kie/errors.js";
import type { UploadFile } from "../../src/kie/upload.js";
import {
  InputImages,
  UPLOAD_LIFETIME_MS,
  UPLOAD_RENEW_MARGIN_MS,
  type UploadRecord,
  type UploadRecords,
  uploadStillUsable,
} from "../../src/worker/input-image.js";

const dir = mkdtempSync(join(tmpdir(), "kie-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PNG = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.from("pixels")]);
const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

function fixture() {
  const clock = { t: 1_000_000, now: () => clock.t };
  const sent: UploadFile[] = [];
  let fail: KieError | undefined;
  const images = new InputImages({
    clock,
    uploader: {
      async upload(file) {
        if (fail) throw fail;
        sent.push(file);
        return { downloadUrl: `https://files.test/${sent.length}` };
      },
    },
  });
  return { clock, sent, images, failWith: (error: KieError | undefined) => (fail = error) };
}

describe("the upload expiry decision", () => {
  it.each([
    // uploaded at, now, usable
    [0, 0, true],
    [0, UPLOAD_LIFETIME_MS - UPLOAD_RENEW_MARGIN_MS - 1, true],
    [0, UPLOAD_LIFETIME_MS - UPLOAD_RENEW_MARGIN_MS, false],
    [0, UPLOAD_LIFETIME_MS, false],
  ])("an upload made at %i is usable at %i: %s", (uploadedAt, now, usable) => {
    expect(uploadStillUsable(uploadedAt, now, UPLOAD_LIFETIME_MS, UPLOAD_RENEW_MARGIN_MS)).toBe(usable);
  });
});

describe("InputImages", () => {
  it("uploads a file once for every row that names it, and again once it may expire before the create", async () => {
    const path = join(dir, "a.png");
    writeFileSync(path, PNG);
    const { clock, sent, images } = fixture();
    const urls = await Promise.all([1, 2, 3].map(() => images.urlFor(path, sha(PNG))));
    expect(urls).toEqual(["https://files.test/1", "https://files.test/1", "https://files.test/1"]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ mimeType: "image/png", fileName: `${sha(PNG).slice(0, 32)}.png` });
    expect(sent[0]!.bytes.equals(PNG)).toBe(true);

    clock.t += UPLOAD_LIFETIME_MS - UPLOAD_RENEW_MARGIN_MS - 1;
    expect(await images.urlFor(path, sha(PNG))).toBe("https://files.test/1");
    clock.t += 1;
    expect(await images.urlFor(path, sha(PNG))).toBe("https://files.test/2");
    expect(sent).toHaveLength(2);
  });

  it("a file changed since enqueue is refused for good and not uploaded", async () => {
    const path = join(dir, "b.png");
    writeFileSync(path, PNG);
    const { sent, images } = fixture();
    const error = await images.urlFor(path, "0".repeat(64)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KieError);
    expect(error).toMatchObject({ code: "validation", retryable: false });
    expect((error as Error).message).toContain("changed since the row was enqueued");
    expect(sent).toHaveLength(0);
  });

  it("a missing file is retryable (a mount may come back)", async () => {
    const { images } = fixture();
    const error = await images.urlFor(join(dir, "gone.png"), sha(PNG)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "validation", retryable: true });
  });

  it("a failed upload is remembered as nothing: the next call uploads", async () => {
    const path = join(dir, "c.png");
    writeFileSync(path, PNG);
    const { sent, images, failWith } = fixture();
    failWith(new KieError({ code: "server_error", retryable: true, message: "boom" }));
    await expect(images.urlFor(path, sha(PNG))).rejects.toMatchObject({ code: "server_error" });
    failWith(undefined);
    expect(await images.urlFor(path, sha(PNG))).toBe("https://files.test/1");
    expect(sent).toHaveLength(1);
  });

  it("a file another worker uploaded is used from the fleet's record, and recorded until it expires", async () => {
    const path = join(dir, "d.png");
    writeFileSync(path, PNG);
    const stored = new Map<string, { record: UploadRecord; ttlMs: number }>();
    const records: UploadRecords = {
      get: async (key) => stored.get(key)?.record,
      put: async (key, record, ttlMs) => void stored.set(key, { record, ttlMs }),
      delete: async (key) => void stored.delete(key),
    };
    const clock = { now: () => 5_000 };
    let uploads = 0;
    const worker = () =>
      new InputImages({
        clock,
        records,
        uploader: { upload: async () => ({ downloadUrl: `https://files.test/${++uploads}` }) },
      });
    expect(await worker().urlFor(path, sha(PNG))).toBe("https://files.test/1");
    expect(stored.get(sha(PNG))).toEqual({
      record: { downloadUrl: "https://files.test/1", uploadedAt: 5_000 },
      ttlMs: UPLOAD_LIFETIME_MS,
    });
    expect(await worker().urlFor(path, sha(PNG))).toBe("https://files.test/1");
    expect(uploads).toBe(1);

    // An upload KIE stopped serving early is forgotten here and for the fleet: the next row uploads.
    const first = worker();
    expect(await first.urlFor(path, sha(PNG))).toBe("https://files.test/1");
    await first.forget(sha(PNG));
    expect(stored.has(sha(PNG))).toBe(false);
    expect(await first.urlFor(path, sha(PNG))).toBe("https://files.test/2");
    expect(await worker().urlFor(path, sha(PNG))).toBe("https://files.test/2");
  });

  it("one row's abort does not abort the upload the other rows of the file wait for", async () => {
    const path = join(dir, "e.png");
    writeFileSync(path, PNG);
    let finish = (_url: string) => {};
    const signals: AbortSignal[] = [];
    const images = new InputImages({
      clock: { now: () => 0 },
      uploader: {
        upload: (_file, signal) => {
          signals.push(signal!);
          return new Promise((resolve) => {
            finish = (downloadUrl) => resolve({ downloadUrl });
          });
        },
      },
    });
    const first = new AbortController();
    const second = new AbortController();
    const a = images.urlFor(path, sha(PNG), first.signal).catch((e: unknown) => e);
    const b = images.urlFor(path, sha(PNG), second.signal);
    await vi.waitFor(() => expect(signals).toHaveLength(1));
    first.abort(new Error("shutting down"));
    expect(await a).toMatchObject({ message: "shutting down" });
    expect(signals[0]!.aborted).toBe(false);
    finish("https://files.test/shared");
    expect(await b).toBe("https://files.test/shared");
    expect(signals).toHaveLength(1);
  });

  it("the upload is aborted once every row waiting for it has given up", async () => {
    const path = join(dir, "f.png");
    writeFileSync(path, PNG);
    const signals: AbortSignal[] = [];
    const images = new InputImages({
      clock: { now: () => 0 },
      uploader: {
        upload: (_file, signal) => {
          signals.push(signal!);
          return new Promise((_resolve, reject) =>
            signal!.addEventListener("abort", () => reject(signal!.reason)),
          );
        },
      },
    });
    const controllers = [new AbortController(), new AbortController()];
    const waits = controllers.map((c) => images.urlFor(path, sha(PNG), c.signal).catch((e: unknown) => e));
    await vi.waitFor(() => expect(signals).toHaveLength(1));
    controllers[0]!.abort(new Error("one"));
    expect(signals[0]!.aborted).toBe(false);
    controllers[1]!.abort(new Error("two"));
    expect(signals[0]!.aborted).toBe(true);
    expect(await Promise.all(waits)).toMatchObject([{ message: "one" }, { message: "two" }]);
  });

  it("a copy of the bytes that changed fails only its own rows: another copy's row checks its own file", async () => {
    const changed = join(dir, "g.png");
    const intact = join(dir, "g-copy.png");
    writeFileSync(changed, Buffer.concat([PNG, Buffer.from("edited")]));
    writeFileSync(intact, PNG);
    const { sent, images } = fixture();
    const [a, b] = await Promise.all([
      images.urlFor(changed, sha(PNG)).catch((e: unknown) => e),
      images.urlFor(intact, sha(PNG)),
    ]);
    expect(a).toMatchObject({ code: "validation", retryable: false });
    expect((a as Error).message).toContain("changed since the row was enqueued");
    expect(b).toBe("https://files.test/1");
    expect(sent).toHaveLength(1);
  });
});

describe("uploads by key lane", () => {
  it("go with the lane's own client, and a lane without one is refused (never another key's client)", async () => {
    const path = join(dir, "lanes.png");
    writeFileSync(path, PNG);
    const used: string[] = [];
    const client = (name: string) => ({
      async upload() {
        used.push(name);
        return { downloadUrl: `https://files.test/${name}` };
      },
    });
    const images = new InputImages({
      clock: { now: () => 0 },
      uploader: client("first"),
      uploaders: [client("first"), client("second")],
    });
    expect(await images.urlFor(path, sha(PNG), undefined, 1)).toBe("https://files.test/second");
    const other = Buffer.concat([PNG, Buffer.from("other")]);
    const otherPath = join(dir, "other.png");
    writeFileSync(otherPath, other);
    await expect(images.urlFor(otherPath, sha(other), undefined, 2)).rejects.toThrow(
      /no upload client for key lane 2/,
    );
    expect(used).toEqual(["second"]);
  });
});
