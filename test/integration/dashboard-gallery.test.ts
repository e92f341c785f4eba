import { request } from "node:http";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Store } from "../../src/archive/s3-store.js";
import type { ArchiveStore } from "../../src/archive/types.js";
import { startDashboard } from "../../src/dashboard/server.js";
import { readFleetState } from "../../src/report/fleet-state.js";
import {
  ARCHIVED,
  BROKEN,
  GALLERY,
  type GalleryFixture,
  OUTSIDE,
  POLICY_ERROR,
  startGalleryFixture,
  TIMEOUT_ERROR,
  TOKEN,
} from "../helpers/gallery-fixture.js";
import { s3rverContext } from "../helpers/s3rver-context.js";

let g: GalleryFixture;
beforeAll(async () => {
  g = await startGalleryFixture({ authToken: TOKEN, allowActions: true });
});
afterAll(async () => {
  await g?.close();
});

const AUTH = { authorization: `Bearer ${TOKEN}` };
const url = (path: string) => new URL(path, g.dashboard.url).toString();
const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(url(path), { headers: { ...AUTH, ...headers }, redirect: "manual" });
const image = (row: string, kind: "image" | "thumb" = "image") => `/batches/${GALLERY}/rows/${row}/${kind}/0`;

describe("the batch page", () => {
  it("shows every archived image as a thumbnail and the other rows as labelled tiles, in manifest order", async () => {
    const res = await get(`/batches/${GALLERY}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("img-src 'self'");
    const page = await res.text();
    for (const id of ARCHIVED) expect(page).toContain(`src="${image(id, "thumb")}"`);
    const order = [...page.matchAll(/data-row="([^"]+)"/g)].map((m) => m[1]);
    expect(order.slice(0, 3)).toEqual(ARCHIVED.slice(0, 3));
    expect(page).toContain("Progress over time");
    expect(page).toMatch(/class="rate">\d+\.\d</);
  });

  it("filters by state and searches prompt, id and metadata", async () => {
    const failed = await (await get(`/batches/${GALLERY}?state=failed`)).text();
    expect([...failed.matchAll(/class="tile[^"]*" data-row="([^"]+)"/g)].map((m) => m[1])).toEqual([
      "fail-1",
      "fail-2",
      "fail-3",
    ]);
    const found = await (await get(`/batches/${GALLERY}?q=LIGHTHOUSE`)).text();
    expect([...found.matchAll(/class="tile[^"]*" data-row="([^"]+)"/g)].map((m) => m[1])).toEqual([
      "lighthouse",
    ]);
    const odd = await (await get(`/batches/${GALLERY}?state=archived&q=odd`)).text();
    expect([...odd.matchAll(/class="tile[^"]*" data-row="([^"]+)"/g)].map((m) => m[1])).toEqual([
      "lighthouse",
      "harbour",
      "market",
      OUTSIDE,
    ]);
  });

  it("groups failed rows by message with counts", async () => {
    const page = await (await get(`/batches/${GALLERY}`)).text();
    const groups = [
      ...page.matchAll(/<td class="count">(\d+)<\/td>\s*<td><span class="error">([^<]+)</g),
    ].map((m) => [Number(m[1]), m[2]]);
    expect(groups).toEqual([
      [2, TIMEOUT_ERROR],
      [1, POLICY_ERROR],
    ]);
  });

  it("shows a row's record with its neighbours under the same filter", async () => {
    const page = await (await get(`/batches/${GALLERY}/rows/orchard?state=archived`)).text();
    expect(page).toMatch(/rel="prev"[^>]*href="\/batches\/gallery-batch\/rows\/lighthouse\?state=archived"/);
    expect(page).toMatch(/rel="next"[^>]*href="\/batches\/gallery-batch\/rows\/harbour\?state=archived"/);
    expect(page).toContain("sha256:");
    expect(page).toContain(g.store.locationOf(`${GALLERY}/orchard.png`));
    const failed = await (await get(`/batches/${GALLERY}/rows/fail-3`)).text();
    expect(failed).toContain(POLICY_ERROR);
    expect(await (await get(`/batches/${GALLERY}/rows/nope`)).text()).toContain("no row nope");
  });
});

describe("images", () => {
  it("streams an archived image with its ETag and Cache-Control, and answers 304 to If-None-Match", async () => {
    const res = await get(image("fox"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    const etag = res.headers.get("etag");
    expect(etag).toMatch(/^".+"$/);
    expect(Buffer.from(await res.arrayBuffer()).equals(g.bytes.get("fox")!)).toBe(true);

    const again = await get(image("fox"), { "if-none-match": etag! });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  it("makes decoded thumbnails of one fixed size, with an ETag, and a placeholder for what does not decode", async () => {
    const res = await get(image("lighthouse", "thumb"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([256, 256]);
    const etag = res.headers.get("etag")!;
    expect((await get(image("lighthouse", "thumb"), { "if-none-match": etag })).status).toBe(304);

    const broken = await get(image(BROKEN, "thumb"));
    expect(broken.status).toBe(200);
    expect(broken.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
    expect(broken.headers.get("x-thumbnail")).toBe("placeholder");
  });

  it("refuses an image whose key is outside the batch's prefix", async () => {
    const res = await get(image(OUTSIDE));
    expect(res.status).toBe(403);
    expect((await get(image(OUTSIDE, "thumb"))).status).toBe(403);
    expect((await get(`/batches/${GALLERY}/rows/fox/image/5`)).status).toBe(404);
  });
});

describe("access", () => {
  it("refuses pages, images and the API without the token, and takes it as bearer or login cookie", async () => {
    for (const path of ["/", `/batches/${GALLERY}`, image("fox"), "/api/batches", "/queues/"]) {
      const res = await fetch(url(path), { redirect: "manual" });
      expect(res.status, path).toBe(401);
    }
    expect(
      (await fetch(url("/"), { headers: { authorization: "Bearer wrong-token-of-some-length" } })).status,
    ).toBe(401);
    expect((await fetch(url("/healthz"))).status).toBe(200);

    const wrong = await fetch(url("/login"), {
      method: "POST",
      body: new URLSearchParams({ token: "nope", next: "/" }),
      redirect: "manual",
    });
    expect(wrong.status).toBe(401);
    const login = await fetch(url("/login"), {
      method: "POST",
      body: new URLSearchParams({ token: TOKEN, next: `/batches/${GALLERY}` }),
      redirect: "manual",
    });
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe(`/batches/${GALLERY}`);
    const setCookie = login.headers.get("set-cookie")!;
    // Twelve hours, script-proof, same-site only (plain HTTP here: not Secure).
    expect(setCookie).toMatch(/Max-Age=43200/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toMatch(/Secure/);
    const cookie = setCookie.split(";")[0]!;
    expect(cookie).not.toContain(TOKEN);
    expect((await fetch(url(`/batches/${GALLERY}`), { headers: { cookie } })).status).toBe(200);
  });

  /** A dashboard's options on this fixture's Redis and queues, on a free port. */
  const ownDashboard = () => ({
    port: 0,
    queuePrefix: g.fx.prefix,
    ledger: g.fx.ledger,
    queues: g.fx.queues.queues,
    fleet: async () => readFleetState([]),
    ping: () => g.fx.redis.ping(),
  });

  it("will not listen beyond loopback without a token, nor allow actions without one", async () => {
    const base = ownDashboard();
    await expect(startDashboard({ ...base, host: "0.0.0.0" })).rejects.toThrow(/needs a token/);
    await expect(startDashboard({ ...base, allowActions: true })).rejects.toThrow(
      /--allow-actions needs a token/,
    );
    await expect(startDashboard({ ...base, authToken: "short" })).rejects.toThrow(/at least 16/);
  });

  /** POSTs `token` to `dashboard`'s login, as if from `forwardedFor` behind a proxy when given. */
  const postLogin = (dashboard: { url: string }, token: string, forwardedFor?: string) =>
    fetch(new URL("/login", dashboard.url), {
      method: "POST",
      body: new URLSearchParams({ token, next: "/" }),
      redirect: "manual",
      ...(forwardedFor ? { headers: { "x-forwarded-for": forwardedFor } } : {}),
    });

  it("an address that keeps sending wrong tokens gets 429 with Retry-After, even with the right one", async () => {
    const own = await startDashboard({ ...ownDashboard(), authToken: TOKEN });
    try {
      // A forged X-Forwarded-For changes nothing when no proxy is trusted: the socket's address counts.
      for (let i = 0; i < 10; i++)
        expect((await postLogin(own, `wrong-${i}`, `203.0.113.${i}`)).status).toBe(401);
      const throttled = await postLogin(own, TOKEN, "198.51.100.9");
      expect(throttled.status).toBe(429);
      expect(Number(throttled.headers.get("retry-after"))).toBeGreaterThan(500);
      expect(throttled.headers.get("set-cookie")).toBeNull();
      expect(await throttled.text()).toMatch(/Too many failed logins/);
    } finally {
      await own.close();
    }
  });

  it("behind a trusted proxy (--trust-proxy 1), the throttle counts each client by X-Forwarded-For", async () => {
    const own = await startDashboard({ ...ownDashboard(), authToken: TOKEN, trustProxy: 1 });
    try {
      for (let i = 0; i < 10; i++)
        expect((await postLogin(own, `wrong-${i}`, "203.0.113.7")).status).toBe(401);
      expect((await postLogin(own, TOKEN, "203.0.113.7")).status).toBe(429);
      // Another user behind the same proxy logs in.
      expect((await postLogin(own, TOKEN, "198.51.100.9")).status).toBe(303);
    } finally {
      await own.close();
    }
  });
});

describe("another site's page", () => {
  it("cannot press bull-board's buttons (actions on, the user's token): its Origin is refused", async () => {
    const { port } = new URL(g.dashboard.url);
    const pause = (origin: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port,
            method: "PUT",
            path: "/queues/api/queues/submit/pause",
            headers: { ...AUTH, origin },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject).end();
      });
    expect(await pause("http://evil.example")).toBe(403);
    expect(await g.fx.queues.queues.submit.isPaused()).toBe(false);
    expect(await pause(`http://127.0.0.1:${port}`)).toBe(200);
    expect(await g.fx.queues.queues.submit.isPaused()).toBe(true);
    await g.fx.queues.queues.submit.resume();
  });
});

describe("retry from the page", () => {
  it("needs the form's CSRF token, then puts one failed row back into the pipeline", async () => {
    const page = await (await get(`/batches/${GALLERY}/rows/fail-3`)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
    expect(csrf).toBeDefined();
    const post = (form: Record<string, string>, headers: Record<string, string> = AUTH) =>
      fetch(url(`/batches/${GALLERY}/retry`), {
        method: "POST",
        headers,
        body: new URLSearchParams(form),
        redirect: "manual",
      });
    expect((await post({ scope: "row", row: "fail-3" })).status).toBe(403);
    expect((await post({ scope: "row", row: "fail-3", csrf: "forged" })).status).toBe(403);
    expect((await post({ scope: "row", row: "fail-3", csrf: csrf! }, {})).status).toBe(401);
    expect((await g.fx.ledger.getRow(GALLERY, "fail-3"))?.status).toBe("failed");

    const done = await post({ scope: "row", row: "fail-3", csrf: csrf! });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toContain("retried=1");
    expect((await g.fx.ledger.getRow(GALLERY, "fail-3"))?.status).toBe("queued");
    expect((await g.fx.ledger.getRow(GALLERY, "fail-1"))?.status).toBe("failed");

    // A group: every failed row with that exact message, and no other.
    const group = await post({ scope: "group", error: TIMEOUT_ERROR, csrf: csrf! });
    expect(group.headers.get("location")).toContain("retried=2");
    for (const id of ["fail-1", "fail-2"])
      expect((await g.fx.ledger.getRow(GALLERY, id))?.status).toBe("submitted");
    const after = await (await get(group.headers.get("location")!)).text();
    expect(after).toContain("Retry: 2 failed rows went back into the pipeline");
    expect(after).not.toContain('id="failures-title"');
    // A group retry that matched no row on a batch still cancel-marked: its sweep's cancels are said.
    const swept = await (await get(`/batches/${GALLERY}?retried=0&skipped=0&cancelled=3`)).text();
    expect(swept).toContain(
      "Retry: 0 failed rows went back into the pipeline; the batch is still cancelled: 3 of its queued rows with no live job were cancelled, as its cancel would have.",
    );
  });
});

describe("the folder store's get()", () => {
  it("streams a file with its size, ETag and recorded type; undefined when absent; refuses a bad key; stops on abort", async () => {
    const object = await g.store.get(`${GALLERY}/fox.png`);
    expect(object).toMatchObject({ size: g.bytes.get("fox")!.length, contentType: "image/png" });
    const chunks: Buffer[] = [];
    for await (const chunk of object!.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(g.bytes.get("fox")!)).toBe(true);
    expect(await g.store.get(`${GALLERY}/missing.png`)).toBeUndefined();
    await expect(g.store.get("../outside.png")).rejects.toThrow(/Invalid archive key/);
    const aborted = new AbortController();
    aborted.abort(new Error("stop"));
    await expect(g.store.get(`${GALLERY}/fox.png`, { signal: aborted.signal })).rejects.toThrow("stop");
  });

  it("an abort at any moment of a read (a client closing mid-request) never becomes an uncaught error", async () => {
    await abortsAtEveryMoment(g.store, `${GALLERY}/fox.png`);
  });
});

/**
 * Reads `key` hundreds of times, aborting after 0..15 event-loop turns (inside `get`, between its
 * awaits, or after it returned), and reads the body as the image route does. No abort may surface
 * as an uncaught exception: in the dashboard that ends the process.
 */
async function abortsAtEveryMoment(store: Pick<ArchiveStore, "get">, key: string): Promise<void> {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on("uncaughtException", onUncaught);
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  let served = 0;
  let refused = 0;
  try {
    for (let i = 0; i < 320; i++) {
      const controller = new AbortController();
      const reading = store.get(key, { signal: controller.signal }).then(
        async (object) => {
          await pipeline(object!.body, new Writable({ write: (_chunk, _enc, done) => done() })).then(
            () => served++,
            () => refused++,
          );
        },
        () => refused++,
      );
      for (let t = 0; t < i % 16; t++) await turn();
      controller.abort(new Error("client went away"));
      await reading;
      await turn(); // an error event is emitted on the next tick: give it one to surface
    }
  } finally {
    process.off("uncaughtException", onUncaught);
  }
  expect(uncaught).toEqual([]);
  expect(served + refused).toBe(320);
  expect(refused).toBeGreaterThan(0);
}

describe("images from S3 (s3rver)", () => {
  const s3 = s3rverContext();

  it("get() streams an object with its size, ETag and content type, and undefined when absent", async () => {
    const store = createS3Store({ ...s3.s3.clientOptions, bucket: s3.s3.bucket, prefix: "get/" });
    try {
      const body = Buffer.from("0123456789".repeat(1000));
      await store.put("b/x.png", Readable.from([body]), { contentType: "image/png" });
      const object = await store.get("b/x.png");
      expect(object).toMatchObject({ size: body.length, contentType: "image/png" });
      expect(object!.etag).toMatch(/^".+"$/);
      const chunks: Buffer[] = [];
      for await (const chunk of object!.body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
      expect(await store.get("b/missing.png")).toBeUndefined();
      await expect(store.get("../escape.png")).rejects.toThrow(/Invalid archive key/);
    } finally {
      await store.close();
    }
  });

  it("an abort at any moment of a read never becomes an uncaught error", async () => {
    const store = createS3Store({ ...s3.s3.clientOptions, bucket: s3.s3.bucket, prefix: "abort/" });
    try {
      await store.put("b/x.png", Readable.from([Buffer.alloc(256 * 1024, 7)]), { contentType: "image/png" });
      await abortsAtEveryMoment(store, "b/x.png");
    } finally {
      await store.close();
    }
  });

  it("the dashboard streams the batch's images from S3 with ETag and 304, and thumbnails them", async () => {
    const store = createS3Store({ ...s3.s3.clientOptions, bucket: s3.s3.bucket, prefix: "dash/" });
    const s = await startGalleryFixture({ store, authToken: TOKEN });
    try {
      const at = (path: string, headers: Record<string, string> = {}) =>
        fetch(new URL(path, s.dashboard.url), { headers: { ...AUTH, ...headers } });
      const res = await at(image("harbour"));
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(s.bytes.get("harbour")!)).toBe(true);
      const etag = res.headers.get("etag")!;
      expect((await at(image("harbour"), { "if-none-match": etag })).status).toBe(304);
      const thumb = await at(image("harbour", "thumb"));
      expect((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width).toBe(256);
      expect((await at(image(OUTSIDE))).status).toBe(403);
    } finally {
      await s.close();
      await store.close();
    }
  });
});
