import { createServer as createNetServer } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downloadImage } from "../../src/archive/download.js";
import type { DownloadError } from "../../src/archive/download-error.js";
import { HostGuard } from "../../src/archive/host-guard.js";
import {
  digestOf,
  type ImageServer,
  jpegBytes,
  pngBytes,
  pngStream,
  startImageServer,
} from "../helpers/image-server.js";

let a: ImageServer;
let b: ImageServer;

beforeAll(async () => {
  a = await startImageServer();
  b = await startImageServer();
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<DownloadError> {
  try {
    await promise;
  } catch (error) {
    return error as DownloadError;
  }
  throw new Error("expected a rejection");
}

describe("downloadImage: content", () => {
  it("streams a PNG with its type, sha256 and byte count", async () => {
    const png = await pngBytes(300_000, 7);
    a.route("/ok.png", { body: png });
    const image = await downloadImage({ url: a.url("/ok.png"), allowHosts: [a.host] });
    expect(image).toMatchObject({ contentType: "image/png", ext: "png" });
    const read = await digestOf(image.stream);
    const expected = await digestOf(Readable.from([png]));
    expect(read).toEqual(expected);
    await expect(image.done).resolves.toEqual(expected);
  });

  it("recognises a JPEG by its magic bytes whatever the Content-Type says", async () => {
    const jpeg = jpegBytes(5000);
    a.route("/photo", { body: jpeg, headers: { "content-type": "text/plain" } });
    const image = await downloadImage({ url: a.url("/photo"), allowHosts: [a.host] });
    expect(image).toMatchObject({ contentType: "image/jpeg", ext: "jpg" });
    expect((await digestOf(image.stream)).bytes).toBe(5000);
  });

  it("hands the stream on after the first bytes, before the body has arrived", async () => {
    const gate = new PassThrough();
    const head = await pngBytes(1000);
    a.route("/slow.png", {
      body: () => {
        gate.write(head.subarray(0, 100));
        return gate;
      },
    });
    const image = await downloadImage({ url: a.url("/slow.png"), allowHosts: [a.host] });
    expect(image.ext).toBe("png");
    gate.end(head.subarray(100));
    expect((await digestOf(image.stream)).bytes).toBe(1000);
  });

  it.each([
    ["an HTML page", Buffer.from("<!doctype html><html><body>Access denied</body></html>")],
    ["a four-byte body", Buffer.from([0x89, 0x50, 0x4e, 0x47])],
    ["an empty body", Buffer.alloc(0)],
    ["a GIF", Buffer.from("GIF89a\x01\x00\x01\x00\x00\x00\x00")],
  ])("refuses %s as not_image, not retryable", async (_what, body) => {
    a.route("/not-image", { body });
    const error = await failure(downloadImage({ url: a.url("/not-image"), allowHosts: [a.host] }));
    expect(error).toMatchObject({ name: "DownloadError", code: "not_image", retryable: false });
  });

  it("refuses a body over maxBytes as too_large", async () => {
    a.route("/big.png", { body: () => pngStream(2_000_000) });
    const image = await downloadImage({ url: a.url("/big.png"), allowHosts: [a.host], maxBytes: 1_000_000 });
    await expect(digestOf(image.stream)).rejects.toMatchObject({ code: "too_large", retryable: false });
    await expect(image.done).rejects.toMatchObject({ code: "too_large" });
  });

  it("a body cut mid-stream fails the stream and done as transient", async () => {
    a.route("/cut.png", {
      body: () => pngStream(1_000_000),
      headers: { "content-length": "1000000" },
      cutAfterBytes: 200_000,
    });
    const image = await downloadImage({ url: a.url("/cut.png"), allowHosts: [a.host] });
    await expect(digestOf(image.stream)).rejects.toMatchObject({ code: "transient", retryable: true });
    await expect(image.done).rejects.toMatchObject({ code: "transient" });
  });
});

describe("downloadImage: HTTP answers", () => {
  it.each([403, 404, 410])("HTTP %i means the URL expired", async (status) => {
    a.route(`/gone-${status}`, { status, body: "AccessDenied" });
    const error = await failure(downloadImage({ url: a.url(`/gone-${status}`), allowHosts: [a.host] }));
    expect(error).toMatchObject({
      name: "DownloadError",
      code: "expired",
      retryable: false,
      httpStatus: status,
    });
  });

  it.each([
    [500, "transient", true],
    [503, "transient", true],
    [429, "transient", true],
    [400, "http_error", false],
  ])("HTTP %i is %s", async (status, code, retryable) => {
    a.route(`/status-${status}`, { status, body: "x" });
    const error = await failure(downloadImage({ url: a.url(`/status-${status}`), allowHosts: [a.host] }));
    expect(error).toMatchObject({ code, retryable, httpStatus: status });
  });

  it("a connection refused is transient", async () => {
    const closed = await startImageServer();
    await closed.close();
    const error = await failure(downloadImage({ url: closed.url("/x.png"), allowHosts: [closed.host] }));
    expect(error).toMatchObject({ code: "transient", retryable: true });
  });

  it("a server that never answers times out as transient", async () => {
    a.route("/hang", { hang: true });
    const error = await failure(
      downloadImage({ url: a.url("/hang"), allowHosts: [a.host], timeouts: { headersMs: 200 } }),
    );
    expect(error).toMatchObject({ code: "transient", retryable: true });
  });

  it("follows redirects, relative and absolute, within the allowed hosts", async () => {
    const png = await pngBytes(2000);
    a.route("/r1", { redirectTo: "/r2", status: 301 });
    a.route("/r2", { redirectTo: a.url("/final.png"), status: 307 });
    a.route("/final.png", { body: png });
    const image = await downloadImage({ url: a.url("/r1"), allowHosts: [a.host] });
    expect((await digestOf(image.stream)).bytes).toBe(2000);
  });

  it("gives up after maxRedirects as http_error", async () => {
    a.route("/loop", { redirectTo: "/loop" });
    const before = a.requests.length;
    const error = await failure(
      downloadImage({ url: a.url("/loop"), allowHosts: [a.host], maxRedirects: 3 }),
    );
    expect(error).toMatchObject({ code: "http_error", retryable: false });
    expect(a.requests.length - before).toBe(4);
  });

  it("names a looping URL by host and path: a signature in its query stays out of the row's error", async () => {
    a.route("/signed-loop", { redirectTo: "/signed-loop" });
    const error = await failure(
      downloadImage({
        url: a.url("/signed-loop?X-Amz-Signature=SIGSECRET"),
        allowHosts: [a.host],
        maxRedirects: 2,
      }),
    );
    expect(error.message).toContain(`${a.host}/signed-loop`);
    expect(error.message).not.toContain("SIGSECRET");
  });

  it("refuses non-http URLs and redirects to them as invalid_url", async () => {
    await expect(downloadImage({ url: "file:///etc/passwd", allowHosts: [] })).rejects.toMatchObject({
      code: "invalid_url",
    });
    a.route("/to-file", { redirectTo: "file:///etc/passwd" });
    await expect(downloadImage({ url: a.url("/to-file"), allowHosts: [a.host] })).rejects.toMatchObject({
      code: "invalid_url",
    });
  });

  it("an abort rejects with the signal's reason, also mid-body", async () => {
    const early = new AbortController();
    early.abort(new Error("shutting down"));
    await expect(
      downloadImage({ url: a.url("/ok.png"), allowHosts: [a.host], signal: early.signal }),
    ).rejects.toThrow("shutting down");

    const gate = new PassThrough();
    const head = await pngBytes(100);
    a.route("/stalled.png", {
      body: () => {
        gate.write(head);
        return gate;
      },
    });
    const late = new AbortController();
    const image = await downloadImage({
      url: a.url("/stalled.png"),
      allowHosts: [a.host],
      signal: late.signal,
    });
    late.abort(new Error("drain deadline"));
    await expect(image.done).rejects.toThrow("drain deadline");
    gate.destroy();
  });

  it("a body whose end is the connection closing is checked for the image's end: cut short is transient, whole is kept", async () => {
    const whole = await pngBytes(300_000);
    let send = whole;
    // A server that answers with neither Content-Length nor chunking: the body ends when it closes.
    const raw = createNetServer((socket) => {
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n");
        socket.end(send);
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", () => resolve()));
    const port = (raw.address() as { port: number }).port;
    try {
      const fetchAll = async () => {
        const image = await downloadImage({
          url: `http://127.0.0.1:${port}/x.png`,
          allowHosts: [`127.0.0.1:${port}`],
        });
        image.stream.resume();
        return image.done;
      };
      expect(await fetchAll()).toMatchObject({ bytes: whole.length });
      // The same image served with its length declared and a trailer after IEND: kept (undici
      // checks a declared length; the end marker is checked only where nothing else can).
      const trailer = Buffer.concat([whole, Buffer.alloc(10, 1)]);
      a.route("/trailer.png", { body: trailer });
      const declared = await downloadImage({ url: a.url("/trailer.png"), allowHosts: [a.host] });
      declared.stream.resume();
      expect(await declared.done).toMatchObject({ bytes: trailer.length });
      send = whole.subarray(0, 200_000);
      const error = (await fetchAll().catch((e: unknown) => e)) as DownloadError;
      expect(error).toMatchObject({ name: "DownloadError", code: "transient", retryable: true });
      expect(error.message).toContain("ends without its PNG IEND chunk after 200000 bytes: cut short");
    } finally {
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    }
  });

  it("gives up on a body that drips (never silent for bodyMs) once the whole download's time is up, as transient", async () => {
    const drip = new PassThrough();
    const head = await pngBytes(100);
    let timer: NodeJS.Timeout | undefined;
    a.route("/drip.png", {
      body: () => {
        drip.write(head);
        // A byte every 50 ms: the idle timeout never fires.
        timer = setInterval(() => drip.write(Buffer.from([0])), 50);
        return drip;
      },
    });
    const started = Date.now();
    const image = await downloadImage({
      url: a.url("/drip.png?X-Amz-Signature=SIGSECRET"),
      allowHosts: [a.host],
      timeouts: { bodyMs: 5_000, totalMs: 600 },
    });
    image.stream.resume();
    const error = (await image.done.catch((e: unknown) => e)) as DownloadError;
    clearInterval(timer);
    drip.destroy();
    expect(error).toMatchObject({ name: "DownloadError", code: "transient", retryable: true });
    expect(error.message).toContain("did not finish within 1 s");
    expect(error.message).not.toContain("SIGSECRET");
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe("downloadImage: SSRF guard", () => {
  it("refuses 127.0.0.1 unless allow-listed, and sends it nothing", async () => {
    a.route("/p.png", { body: await pngBytes(500) });
    const before = a.requests.length;
    const error = await failure(downloadImage({ url: a.url("/p.png"), allowHosts: [] }));
    expect(error).toMatchObject({
      name: "DownloadError",
      code: "host_refused",
      retryable: false,
      host: a.host,
    });
    expect(error.message).toContain(a.host);
    expect(error.message).toContain("loopback");
    expect(a.requests.length).toBe(before);
  });

  it("refuses localhost (it resolves to loopback) unless allow-listed", async () => {
    a.route("/l.png", { body: await pngBytes(500) });
    const url = `http://localhost:${a.port}/l.png`;
    const before = a.requests.length;
    const error = await failure(downloadImage({ url, allowHosts: [a.host] }));
    expect(error).toMatchObject({ code: "host_refused", host: `localhost:${a.port}` });
    expect(error.message).toMatch(/resolves to (127\.0\.0\.1|::1)/);
    expect(a.requests.length).toBe(before);

    const image = await downloadImage({ url, allowHosts: ["localhost"] });
    expect((await digestOf(image.stream)).bytes).toBe(500);
  });

  it("a host:port entry allows that port only", async () => {
    a.route("/a.png", { body: await pngBytes(500) });
    b.route("/b.png", { body: await pngBytes(500) });
    const image = await downloadImage({ url: a.url("/a.png"), allowHosts: [`127.0.0.1:${a.port}`] });
    await digestOf(image.stream);

    const before = b.requests.length;
    const error = await failure(downloadImage({ url: b.url("/b.png"), allowHosts: [`127.0.0.1:${a.port}`] }));
    expect(error).toMatchObject({ code: "host_refused", host: b.host });
    expect(b.requests.length).toBe(before);

    // A bare host entry allows every port.
    const either = await downloadImage({ url: b.url("/b.png"), allowHosts: ["127.0.0.1"] });
    expect((await digestOf(either.stream)).bytes).toBe(500);
  });

  it.each([
    ["127.0.0.1", (s: ImageServer) => s.url("/target.png")],
    ["localhost", (s: ImageServer) => `http://localhost:${s.port}/target.png`],
  ])("a redirect to a refused host (%s) is refused without fetching it", async (_name, target) => {
    b.route("/target.png", { body: await pngBytes(500) });
    a.route("/hop", { redirectTo: target(b) });
    const before = b.requests.length;
    const error = await failure(downloadImage({ url: a.url("/hop"), allowHosts: [a.host] }));
    expect(error).toMatchObject({ code: "host_refused", retryable: false });
    expect(error.message).toContain(`:${b.port}`);
    expect(b.requests.length).toBe(before);
  });

  it("refuses private IP literals before connecting", async () => {
    for (const url of [
      "http://10.0.0.1/x.png",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]:9/x",
      "http://[::ffff:127.0.0.1]/x",
      "http://0.0.0.0/x",
    ]) {
      await expect(downloadImage({ url, allowHosts: [] })).rejects.toMatchObject({ code: "host_refused" });
    }
  });

  it("connections only go to vetted addresses: the pinned lookup knows no other host", async () => {
    const guard = new HostGuard(["localhost"]);
    await guard.vet(new URL(`http://localhost:${a.port}/`));
    const answer = await new Promise<unknown>((resolve, reject) =>
      guard.lookup("localhost", { all: true }, (error, addresses) =>
        error ? reject(error) : resolve(addresses),
      ),
    );
    expect(answer).toEqual(
      expect.arrayContaining([expect.objectContaining({ address: expect.any(String) })]),
    );
    await expect(
      new Promise((resolve, reject) =>
        guard.lookup("example.com", { all: true }, (error, addresses) =>
          error ? reject(error) : resolve(addresses),
        ),
      ),
    ).rejects.toMatchObject({ code: "ENOTFOUND" });
  });
});
