/**
 * KIE's File Upload API and Qwen's image modes, against the simulator over real HTTP: the upload
 * client (auth, size limit, expiry, a redirect refused) and image-to-image / edit creates whose
 * output derives from the input image.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createKieClient, createUploadClient, type KieError } from "../../src/kie/index.js";
import { startSimulator } from "../../src/simulator/index.js";
import type { SimulatorOptions } from "../../src/simulator/types.js";
import { pngBytes, startImageServer } from "../helpers/image-server.js";
import { kieErrorOf, TEST_API_KEY } from "../helpers/kie-errors.js";

const FAST: SimulatorOptions = { apiKey: TEST_API_KEY, recordLagMs: 0, randomSeed: 3, timeScale: 1000 };
const sha = (bytes: Buffer | Uint8Array) => createHash("sha256").update(bytes).digest("hex");

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

async function setup(options: SimulatorOptions = FAST, apiKey = TEST_API_KEY) {
  const sim = await startSimulator(options);
  const uploads = createUploadClient({ baseUrl: sim.url, apiKey });
  const kie = createKieClient({ baseUrl: sim.url, apiKey, flavor: "jobs" });
  opened.push(sim, uploads, kie);
  return { sim, uploads, kie };
}

async function get(url: string): Promise<{ status: number; bytes: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
}

async function waitForSuccess(kie: ReturnType<typeof createKieClient>, taskId: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const record = await kie.getTask(taskId);
    if (record.status !== "generating") return record;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still generating after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the File Upload API", () => {
  it("stores a file and serves it at its downloadUrl until it expires", async () => {
    const { sim, uploads } = await setup();
    const png = await pngBytes(3000);
    const { downloadUrl } = await uploads.upload({ bytes: png, fileName: "shoe.png", mimeType: "image/png" });
    expect(downloadUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/uploads\/kie-batch\/shoe\.png$/);
    const served = await get(downloadUrl);
    expect(served.status).toBe(200);
    expect(sha(served.bytes)).toBe(sha(png));
    expect(sim.stats().uploads).toBe(1);

    sim.expireUploads();
    expect((await get(downloadUrl)).status).toBe(404);
  });

  it("a wrong key is refused as unauthorized (and the key is in no error)", async () => {
    const { uploads } = await setup(FAST, "sk-wrong-key-1234567890");
    const error = await kieErrorOf(
      uploads.upload({ bytes: Buffer.from("x"), fileName: "a.png", mimeType: "image/png" }),
    );
    expect(error).toMatchObject({ code: "unauthorized", fleetEffect: "bad-key" });
    expect(JSON.stringify({ message: error.message, stack: error.stack })).not.toContain("sk-wrong-key");
  });

  it("a file over the size limit is refused for good, not retried", async () => {
    const { uploads } = await setup({ ...FAST, uploadMaxBytes: 1000 });
    const error = await kieErrorOf(
      uploads.upload({ bytes: await pngBytes(5000), fileName: "big.png", mimeType: "image/png" }),
    );
    expect(error).toMatchObject({ retryable: false, apiCode: 413 });
    expect(error.message).toContain("file too large: at most 1000 bytes");
  });

  it("a 5xx is retryable", async () => {
    const { sim, uploads } = await setup();
    sim.injectFaults("upload", { kind: "code", code: 500 });
    const error = await kieErrorOf(
      uploads.upload({ bytes: Buffer.from("x"), fileName: "a.png", mimeType: "image/png" }),
    );
    expect(error).toMatchObject({ code: "server_error", retryable: true, maybeCreated: false });
  });

  it("a redirect to another host is refused, and that host never sees the file or the key", async () => {
    const elsewhere = await startImageServer();
    const redirecting = await startImageServer({
      "/api/file-stream-upload": { status: 307, redirectTo: elsewhere.url("/steal") },
    });
    opened.push(elsewhere, redirecting);
    const uploads = createUploadClient({ baseUrl: redirecting.origin, apiKey: TEST_API_KEY });
    opened.push(uploads);
    const error: KieError = await kieErrorOf(
      uploads.upload({ bytes: Buffer.from("secret bytes"), fileName: "a.png", mimeType: "image/png" }),
    );
    expect(error).toMatchObject({ code: "http_error", retryable: false, httpStatus: 307 });
    expect(error.message).toContain(`redirect (HTTP 307) to ${elsewhere.origin}: not followed`);
    expect(error.message).not.toContain("/steal");
    expect(elsewhere.requests).toEqual([]);
    expect(redirecting.requests).toEqual(["/api/file-stream-upload"]);
  });
});

describe("what the upload client accepts", () => {
  it("a plain-http base URL only on a loopback address: the key and the files are not sent in the clear", () => {
    expect(() => createUploadClient({ baseUrl: "http://files.example.com", apiKey: TEST_API_KEY })).toThrow(
      "KIE upload base URL must be https (plain http only to a loopback address), got http://files.example.com",
    );
    for (const baseUrl of [
      "http://127.0.0.1:4010",
      "http://localhost:4010",
      "http://[::1]:4010",
      "https://files.example.com",
    ]) {
      opened.push(createUploadClient({ baseUrl, apiKey: TEST_API_KEY }));
    }
  });

  it("an answer whose downloadUrl is not http(s) is refused: KIE would be told to fetch it", async () => {
    const service = await startImageServer({
      "/api/file-stream-upload": {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          success: true,
          code: 200,
          msg: "ok",
          data: { downloadUrl: "file:///etc/passwd" },
        }),
      },
    });
    opened.push(service);
    const uploads = createUploadClient({ baseUrl: service.origin, apiKey: TEST_API_KEY });
    opened.push(uploads);
    const error: KieError = await kieErrorOf(
      uploads.upload({ bytes: Buffer.from("bytes"), fileName: "a.png", mimeType: "image/png" }),
    );
    // Read as any answer of an unexpected shape (retried, then the row fails): never sent to KIE.
    expect(error.message).toContain("downloadUrl");
    expect(error.message).toContain("expected an http(s) URL");
  });
});

describe("image-to-image and edit on the simulator", () => {
  it("an edit of an uploaded file makes an image drawn from the input's bytes", async () => {
    const { sim, uploads, kie } = await setup();
    const first = await pngBytes(2000, 1);
    const second = await pngBytes(2000, 2);
    const urls = [];
    for (const [name, bytes] of [
      ["a.png", first],
      ["b.png", second],
    ] as const) {
      urls.push((await uploads.upload({ bytes, fileName: name, mimeType: "image/png" })).downloadUrl);
    }
    const outputs = [];
    for (const url of urls) {
      const taskId = await kie.submit({
        prompt: "on a white background",
        model: "edit",
        image_url: url,
        seed: 5,
      });
      expect(sim.task(taskId)).toMatchObject({ inputSha256: sha(url === urls[0] ? first : second) });
      const record = await waitForSuccess(kie, taskId);
      outputs.push(sha((await get(record.imageUrls[0]!)).bytes));
      expect(sim.task(taskId)!.params).toMatchObject({ model: "edit", image_url: url });
    }
    // Same prompt and seed, different input: a different image.
    expect(outputs[0]).not.toBe(outputs[1]);
  });

  it("image-to-image fetches an image_url from anywhere and charges its model's price", async () => {
    const png = await pngBytes(1500, 9);
    const images = await startImageServer({
      "/shoe.png": { body: png, headers: { "content-type": "image/png" } },
    });
    opened.push(images);
    const { sim, kie } = await setup();
    const taskId = await kie.submit({
      prompt: "as a watercolour",
      model: "image-to-image",
      image_url: images.url("/shoe.png"),
      strength: 0.4,
      acceleration_level: "high",
    });
    expect(sim.task(taskId)).toMatchObject({ inputSha256: sha(png), credits: 8 });
    expect(sim.stats().creditsByTask[taskId]).toBe(8);
  });

  it.each<[Record<string, unknown>, string]>([
    [{ model: "edit" }, "image_url is required"],
    [{ model: "image-to-image", image_url: "IMAGE", strength: 2 }, "strength must be a number from 0 to 1"],
    [
      { model: "edit", image_url: "IMAGE", prompt: "x".repeat(2001) },
      "prompt must be at most 2000 characters",
    ],
    [{ model: "edit", image_url: "MISSING" }, "image_url could not be fetched (HTTP 404)"],
  ])("refuses %j: %s", async (fields, message) => {
    const images = await startImageServer({ "/a.png": { body: await pngBytes(500) } });
    opened.push(images);
    const { kie } = await setup();
    const image_url =
      fields.image_url === "IMAGE"
        ? images.url("/a.png")
        : fields.image_url === "MISSING"
          ? images.url("/gone.png")
          : undefined;
    const error = await kieErrorOf(
      kie.submit({ prompt: "redo", ...fields, ...(image_url ? { image_url } : {}) } as never),
    );
    expect(error).toMatchObject({ code: "validation", retryable: false });
    expect(error.message).toContain(message);
  });

  it("the qwen flavour refuses a market-only model before sending anything", async () => {
    const sim = await startSimulator(FAST);
    const kie = createKieClient({ baseUrl: sim.url, apiKey: TEST_API_KEY, flavor: "qwen" });
    opened.push(sim, kie);
    const error = await kieErrorOf(
      kie.submit({ prompt: "redo", model: "edit", image_url: `${sim.url}/x.png` }),
    );
    expect(error).toMatchObject({ code: "validation", retryable: false, maybeCreated: false });
    expect(error.message).toContain("needs KIE's market API: set KIE_API_FLAVOR=jobs");
    expect(sim.stats().creates).toBe(0);
  });
});
