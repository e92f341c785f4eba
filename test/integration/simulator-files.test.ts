import { createHash } from "node:crypto";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { type SimulatorHandle, startSimulator } from "../../src/simulator/index.js";
import { call, decodePng, download, generate, jobsStatus, jpegMarkers, until } from "./simulator-helpers.js";

const FAST = { timeScale: 10_000, recordLagMs: 0 };
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

const started: SimulatorHandle[] = [];
async function simulator(options: Parameters<typeof startSimulator>[0]): Promise<SimulatorHandle> {
  const sim = await startSimulator(options);
  started.push(sim);
  return sim;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

describe("images", () => {
  it("are the same bytes for the same prompt, seed and size, and differ when the seed or prompt does", async () => {
    const sim = await simulator(FAST);
    const other = await simulator({ ...FAST, randomSeed: 99 });
    const bytes = async (s: SimulatorHandle, params: Record<string, unknown>) =>
      (await download(await generate(s, params))).bytes;

    const base = { prompt: "a castle", seed: 5, image_size: "square_hd" };
    const first = await bytes(sim, base);
    expect(sha256(await bytes(sim, base))).toBe(sha256(first));
    expect(sha256(await bytes(other, base))).toBe(sha256(first)); // another simulator, same picture
    expect(sha256(await bytes(sim, { ...base, seed: 6 }))).not.toBe(sha256(first));
    expect(sha256(await bytes(sim, { ...base, prompt: "a tower" }))).not.toBe(sha256(first));

    const png = decodePng(first);
    expect([png.width, png.height]).toEqual([512, 512]);
    // Not a flat fill: the picture carries the hash.
    expect(new Set(png.pixels).size).toBeGreaterThan(10);
    const wide = decodePng(await bytes(sim, { ...base, image_size: "landscape_16_9" }));
    expect(wide.width).toBeGreaterThan(wide.height);
  });

  it("serves a valid baseline JPEG for output_format jpg, deterministic too", async () => {
    const sim = await simulator(FAST);
    const params = { prompt: "jpeg please", seed: 1, output_format: "jpg", image_size: "portrait_4_3" };
    const url = await generate(sim, params);
    expect(url).toMatch(/\/0\.jpg$/);
    const image = await download(url);
    expect(image.type).toBe("image/jpeg");
    expect(jpegMarkers(image.bytes)).toContain(0xc0);
    const sof = image.bytes.indexOf(Buffer.from([0xff, 0xc0]));
    expect([image.bytes.readUInt16BE(sof + 7), image.bytes.readUInt16BE(sof + 5)]).toEqual([288, 384]);
    expect(sha256((await download(await generate(sim, params))).bytes)).toBe(sha256(image.bytes));
  });

  it("gives each of imagesPerTask results its own picture", async () => {
    const sim = await simulator({ ...FAST, imagesPerTask: 2 });
    const created = await call(sim, "POST", "/api/v1/jobs/createTask", {
      body: { model: "qwen/text-to-image", input: { prompt: "two", seed: 1 } },
    });
    const done = await until(
      () => jobsStatus(sim, created.body.data.taskId),
      (a) => a.body.data?.state === "success",
    );
    const urls: string[] = JSON.parse(done.body.data.resultJson).resultUrls;
    expect(urls).toHaveLength(2);
    const [a, b] = await Promise.all(urls.map(async (url) => (await download(url)).bytes));
    decodePng(a!);
    decodePng(b!);
    expect(sha256(a!)).not.toBe(sha256(b!));
  });

  it("pads to 5 MB with a private chunk, streamed, and stays a valid PNG; HEAD gives the size", async () => {
    const sim = await simulator({ ...FAST, imagePadBytes: 5_000_000 });
    const url = await generate(sim, { prompt: "big", seed: 2 });
    const head = await request(url, { method: "HEAD" });
    await head.body.dump();
    const size = Number(head.headers["content-length"]);
    expect(size).toBeGreaterThanOrEqual(5_000_000);
    expect(size).toBeLessThan(5_000_000 + 12);

    const response = await request(url);
    let chunks = 0;
    const parts: Buffer[] = [];
    for await (const part of response.body) {
      chunks++;
      parts.push(part as Buffer);
    }
    const bytes = Buffer.concat(parts);
    expect(bytes.length).toBe(size);
    expect(chunks).toBeGreaterThan(1); // it arrived as a stream, not one write
    const png = decodePng(bytes);
    expect(png.chunkTypes).toContain("paDd");
    expect(png.chunkTypes.at(-1)).toBe("IEND");
    // Padding leaves the picture alone.
    const plain = await simulator(FAST);
    expect(
      decodePng((await download(await generate(plain, { prompt: "big", seed: 2 }))).bytes).pixels,
    ).toEqual(png.pixels);
    expect(sim.stats().downloads).toBe(1);
  });

  it("pads a JPEG with COM segments", async () => {
    const sim = await simulator({ ...FAST, imagePadBytes: 200_000 });
    const image = await download(await generate(sim, { prompt: "big jpeg", output_format: "jpg" }));
    expect(image.bytes.length).toBeGreaterThanOrEqual(200_000);
    const markers = jpegMarkers(image.bytes);
    expect(markers.filter((marker) => marker === 0xfe).length).toBeGreaterThan(3);
    expect(markers.slice(-4)).toEqual([0xdb, 0xc0, 0xc4, 0xda]);
  });
});

describe("drawing one picture per turn", () => {
  it("counts nothing for a download whose client left while its picture was drawn", async () => {
    const sim = await simulator(FAST);
    const urls = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        generate(sim, { prompt: `gone ${i}`, seed: i, image_size: "square_hd" }),
      ),
    );
    const before = sim.stats().downloads;
    const gone = new AbortController();
    const asked = urls.map((url) => request(url, { signal: gone.signal }).catch(() => undefined));
    await new Promise((resolve) => setImmediate(resolve));
    gone.abort();
    await Promise.all(asked);
    // The pictures are drawn (on the simulator's drawing thread) and their handlers have run by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sim.stats().downloads - before).toBeLessThanOrEqual(2);
    // And a client that stays is served.
    expect((await download(urls[0]!)).status).toBe(200);
  });
});

describe("file expiry and download-url", () => {
  it("expires result URLs after fileTtlMs (simulated), and download-url hands out a fresh link that works", async () => {
    // x100: a 20 s simulated file life is 200 ms of real time.
    const sim = await simulator({
      timeScale: 100,
      recordLagMs: 0,
      latency: { minMs: 100, maxMs: 100 },
      fileTtlMs: 20_000,
    });
    const url = await generate(sim, { prompt: "short-lived", seed: 3 });
    const original = await download(url);
    expect(original.status).toBe(200);
    await until(
      () => download(url),
      (answer) => answer.status === 404,
    );

    const refreshed = await call(sim, "POST", "/api/v1/common/download-url", { body: { url } });
    expect(refreshed.body).toMatchObject({ code: 200, msg: "success" });
    const fresh: string = refreshed.body.data;
    expect(fresh).toMatch(/\?expires=\d+&token=/);
    const again = await download(fresh);
    expect(again.status).toBe(200);
    expect(sha256(again.bytes)).toBe(sha256(original.bytes));
    expect(sim.stats().downloadUrlCalls).toBe(1);
  });

  it("expireFiles cuts original URLs now; fresh links work until their own 20 simulated minutes pass", async () => {
    // x10,000: 20 simulated minutes are 120 ms.
    const sim = await simulator(FAST);
    const url = await generate(sim, { prompt: "cut short" });
    const taskId = url.split("/").at(-2)!;
    sim.expireFiles(taskId);
    expect((await download(url)).status).toBe(404);

    const fresh: string = (await call(sim, "POST", "/api/v1/common/download-url", { body: { url } })).body
      .data;
    expect((await download(fresh)).status).toBe(200);
    // A fresh link may itself be refreshed.
    expect((await call(sim, "POST", "/api/v1/common/download-url", { body: { url: fresh } })).body.code).toBe(
      200,
    );
    expect((await download(fresh.replace(/token=[^&]+/, "token=forged"))).status).toBe(404);
    expect((await download(fresh.replace(/expires=\d+/, "expires=99999999999999"))).status).toBe(404);
    await until(
      () => download(fresh),
      (answer) => answer.status === 404,
    );
  });

  it("breakFiles: original URLs answer the status (a broken file host), download-url links work, and null mends them", async () => {
    const sim = await simulator(FAST);
    const url = await generate(sim, { prompt: "broken host" });
    const taskId = url.split("/").at(-2)!;
    sim.breakFiles(taskId);
    expect((await download(url)).status).toBe(502);
    sim.breakFiles(taskId, 503);
    expect((await download(url)).status).toBe(503);
    const fresh: string = (await call(sim, "POST", "/api/v1/common/download-url", { body: { url } })).body
      .data;
    expect((await download(fresh)).status).toBe(200);
    sim.breakFiles(taskId, null);
    expect((await download(url)).status).toBe(200);
  });

  it("answers 422 for a URL that is not one of this simulator's results", async () => {
    const sim = await simulator(FAST);
    const url = await generate(sim, { prompt: "p" });
    const ask = (body: unknown) => call(sim, "POST", "/api/v1/common/download-url", { body });
    for (const body of [
      {},
      { url: "" },
      { url: "https://example.com/image.png" },
      { url: url.replace(/\/files\/[^/]+\//, "/files/unknown_task/") },
      { url: url.replace("/0.png", "/5.png") },
      { url: url.replace("/0.png", "/0.jpg") },
      { url: url.replace(/:\d+\//, ":1/") },
    ]) {
      expect((await ask(body)).body.code, JSON.stringify(body)).toBe(422);
    }
  });

  it("answers 404 for the file of a task still generating", async () => {
    const sim = await simulator({ ...FAST, timeScale: 1, latency: { minMs: 60_000, maxMs: 60_000 } });
    const created = await call(sim, "POST", "/api/v1/qwen/generate", { body: { prompt: "slow" } });
    expect((await download(`${sim.url}/files/${created.body.data.taskId}/0.png`)).status).toBe(404);
  });
});
