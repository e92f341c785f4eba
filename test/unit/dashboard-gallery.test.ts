import { describe, expect, it } from "vitest";
import { isLoopbackHost, isLoopbackHostHeader } from "../../src/core/loopback.js";
import { csrfToken, csrfValid, parseCookies, tokensEqual } from "../../src/dashboard/access.js";
import { renderBatchPage } from "../../src/dashboard/batch-page.js";
import { readFailureGroups } from "../../src/dashboard/failure-groups.js";
import { galleryHref, parseGalleryQuery, readMatches, rowMatches } from "../../src/dashboard/gallery.js";
import { keyInBatch, sameEtag } from "../../src/dashboard/image-guard.js";
import { safeNext } from "../../src/dashboard/login.js";
import { summarizeProgress } from "../../src/dashboard/progress-chart.js";
import { ThumbIndex } from "../../src/dashboard/thumb-cache.js";
import type { RowRecord, Status } from "../../src/ledger/index.js";
import type { RowWindow, RowWindowOptions } from "../../src/ledger/row-window.js";

function row(seq: number, status: Status, extra: Partial<RowRecord> = {}): RowRecord {
  return {
    batch: "b",
    id: `r${seq}`,
    line: seq + 1,
    seq,
    prompt: `prompt ${seq}`,
    params: {},
    metadata: {},
    estimatedCredits: 8,
    status,
    taskIds: [],
    resubmits: 0,
    uncertain: 0,
    images: [],
    creditsReserved: 0,
    creditsSpent: 0,
    creditsUncertain: 0,
    createdAt: 0,
    updatedAt: 0,
    waitingBudget: false,
    ...extra,
  };
}

/** A ledger of `n` rows (every third archived) that counts the rows it hands out. */
function fakeLedger(n: number) {
  const rows = Array.from({ length: n }, (_, i) => row(i + 1, i % 3 === 0 ? "archived" : "queued"));
  const stats = { read: 0, calls: 0 };
  return {
    stats,
    // As for a batch made before the state indexes: every filter walks the manifest.
    stateWindow: async () => undefined,
    async rowWindow(_batch: string, o: RowWindowOptions): Promise<RowWindow> {
      stats.calls++;
      const ordered = o.reverse ? [...rows].reverse() : rows;
      const from =
        o.after === undefined
          ? ordered
          : ordered.filter((r) => (o.reverse ? r.seq < o.after! : r.seq > o.after!));
      const page = from.slice(0, o.limit);
      stats.read += page.length;
      return page.length < o.limit ? { rows: page } : { rows: page, next: page.at(-1)!.seq };
    },
  };
}

describe("gallery paging", () => {
  it("pages by a seq cursor: every matching row once, each request reading a bounded window", async () => {
    const ledger = fakeLedger(100_000);
    const seen: string[] = [];
    let after: number | undefined;
    for (let page = 0; page < 3; page++) {
      ledger.stats.read = 0;
      const result = await readMatches(
        ledger,
        "b",
        { filter: "archived", search: "", order: "manifest", ...(after === undefined ? {} : { after }) },
        24,
      );
      expect(ledger.stats.read).toBeLessThanOrEqual(200);
      seen.push(...result.rows.map((r) => r.id));
      after = result.next;
    }
    expect(seen).toEqual(Array.from({ length: 72 }, (_, i) => `r${i * 3 + 1}`));
  });

  it("stops at the scan budget and hands back where it stopped when nothing matches", async () => {
    const ledger = fakeLedger(100_000);
    const result = await readMatches(
      ledger,
      "b",
      { filter: "failed", search: "", order: "manifest" },
      24,
      2_000,
    );
    expect(result.rows).toEqual([]);
    expect(result.scanned).toBe(2_000);
    expect(result.next).toBe(2_000);
  });

  it("reads latest rows first when asked", async () => {
    const result = await readMatches(fakeLedger(10), "b", { filter: "all", search: "", order: "latest" }, 3);
    expect(result.rows.map((r) => r.id)).toEqual(["r10", "r9", "r8"]);
  });

  it("matches the search against prompt, id and metadata values, case-insensitively", () => {
    const r = row(1, "archived", { prompt: "A Red Fox", metadata: { sku: "SKU-42" } });
    const q = (search: string, filter: "all" | "failed" = "all") => rowMatches(r, { filter, search });
    expect([q("red fox"), q("R1"), q("sku-4"), q("wolf"), q("fox", "failed")]).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it("parses its query defensively and writes only what differs from the defaults", () => {
    expect(parseGalleryQuery({ state: "evil", q: "  fox ", after: "12", order: "latest" })).toEqual({
      filter: "all",
      search: "fox",
      order: "latest",
      after: 12,
    });
    expect(parseGalleryQuery({ after: "1e999" })).toEqual({ filter: "all", search: "", order: "manifest" });
    expect(galleryHref("b", { filter: "failed", search: "a&b", after: 5 })).toBe(
      "/batches/b?state=failed&q=a%26b&after=5",
    );
  });
});

describe("access checks", () => {
  it("compares tokens by value only", () => {
    expect(tokensEqual("0123456789abcdef", "0123456789abcdef")).toBe(true);
    expect(tokensEqual("0123456789abcdeg", "0123456789abcdef")).toBe(false);
    expect(tokensEqual("", "0123456789abcdef")).toBe(false);
  });

  it("accepts a CSRF token only for the key and subject it was made for", () => {
    const key = Buffer.alloc(32, 1);
    const token = csrfToken(key, "token");
    expect(csrfValid(key, "token", token)).toBe(true);
    expect(csrfValid(Buffer.alloc(32, 2), "token", token)).toBe(false);
    expect(csrfValid(key, "loopback", token)).toBe(false);
    expect(csrfValid(key, "token", undefined)).toBe(false);
    expect(csrfValid(key, "token", [token])).toBe(false);
  });

  it("takes only a loopback name as the Host header of a dashboard without a token", () => {
    for (const host of ["localhost", "LOCALHOST:3000", "127.0.0.1", "127.1.2.3:80", "[::1]", "[::1]:3000"])
      expect(isLoopbackHostHeader(host), host).toBe(true);
    for (const host of [
      undefined,
      "",
      "evil.example",
      "localhost.evil.example",
      "127.0.0.1.nip.io",
      "0.0.0.0:3000",
      "[::]",
      "::1",
      "10.0.0.1",
      "localhost:3000:1",
    ])
      expect(isLoopbackHostHeader(host), String(host)).toBe(false);
  });

  it("knows loopback hosts, reads cookies, and sends a login only to its own paths", () => {
    expect(["127.0.0.1", "127.9.9.9", "::1", "localhost"].map(isLoopbackHost)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(["0.0.0.0", "10.0.0.1", "::", "example.com"].map(isLoopbackHost)).toEqual([
      false,
      false,
      false,
      false,
    ]);
    // IPv6 spelt long, bracketed, or IPv4-mapped: loopback all the same; a mapped other address is not.
    expect(
      ["0:0:0:0:0:0:0:1", "[::1]", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::2"].map(isLoopbackHost),
    ).toEqual([true, true, true, false, false]);
    expect(parseCookies("a=1; kie_dashboard=xyz; a=2")).toEqual({ a: "1", kie_dashboard: "xyz" });
    expect([
      safeNext("/batches/x"),
      safeNext("//evil.example"),
      safeNext("/\\evil"),
      safeNext("https://x"),
    ]).toEqual(["/batches/x", "/", "/", "/"]);
  });
});

describe("failure groups of a batch made before the state indexes", () => {
  it("page views at once share one indexing pass instead of each walking the batch", async () => {
    const passes: (() => void)[] = [];
    const ledger = {
      ensureStateIndex: () => new Promise<void>((resolve) => passes.push(resolve)),
      async *statePages() {},
    };
    const views = Promise.all([1, 2, 3].map(() => readFailureGroups(ledger, "old")));
    expect(passes).toHaveLength(1);
    for (const finish of passes) finish();
    expect(await views).toEqual([1, 2, 3].map(() => ({ groups: [], read: 0, complete: true })));
  });
});

describe("the image key guard", () => {
  it.each([
    ["b", "b/r1.png", true],
    ["b", "b/sub/r1.png", true],
    ["b", "bb/r1.png", false],
    ["b", "other/r1.png", false],
    ["b", "b/../other/r1.png", false],
    ["b", "/b/r1.png", false],
    ["b", "b/", false],
    ["b", "b/.r1.png.meta.json", false],
  ])("batch %s, key %s: %s", (batch, key, allowed) => {
    expect(keyInBatch(batch, key)).toBe(allowed);
  });

  it("matches If-None-Match lists and weak tags", () => {
    expect(sameEtag('"a", W/"b"', '"b"')).toBe(true);
    expect(sameEtag('"a"', '"b"')).toBe(false);
    expect(sameEtag(undefined, '"b"')).toBe(false);
  });
});

describe("the thumbnail cache's bound", () => {
  it("evicts the least recently used thumbnails to stay within its bytes", () => {
    const index = new ThumbIndex(100);
    expect(index.add("a", 40)).toEqual([]);
    expect(index.add("b", 40)).toEqual([]);
    expect(index.touch("a")).toBe(true);
    expect(index.add("c", 40)).toEqual(["b"]);
    expect(index.bytes).toBe(80);
    expect(index.add("huge", 500)).toEqual(["a", "c", "huge"]);
    expect([index.bytes, index.size, index.touch("huge")]).toEqual([0, 0, false]);
  });
});

describe("progress over time", () => {
  it("fills the last hour minute by minute and derives the rate and the ETA", () => {
    const now = 100 * 60_000 + 30_000;
    const s = summarizeProgress(
      [
        { at: 96 * 60_000, archived: 10, credits: 80 },
        { at: 99 * 60_000, archived: 5, credits: 40 },
        { at: 10 * 60_000, archived: 99, credits: 1 },
      ],
      now,
      30,
    );
    expect(s.minutes).toHaveLength(60);
    expect(s.minutes.at(-1)!.at).toBe(100 * 60_000);
    expect(s.ratePerMinute).toBe(3);
    expect(s.etaMs).toBe(10 * 60_000);
    expect(s.creditsInSpan).toBe(120);
    expect(summarizeProgress([], now, 5).etaMs).toBeNull();
    expect(summarizeProgress([], now, 0).etaMs).toBe(0);
    // A young batch: its own life, 15 minutes at least; an old one: the last hour.
    expect(summarizeProgress([], now, 0, now - 20 * 60_000).minutes).toHaveLength(21);
    expect(summarizeProgress([], now, 0, now - 60_000).minutes).toHaveLength(15);
    expect(summarizeProgress([], now, 0, now - 600 * 60_000).minutes).toHaveLength(60);
  });
});

describe("the batch page's banners", () => {
  it("shows a store outage and paused submissions with their reasons, escaped", () => {
    const status = {
      batch: "b",
      total: 10,
      queued: 4,
      submitted: 0,
      generating: 0,
      archiving: 3,
      archived: 3,
      failed: 0,
      cancelled: 0,
      waitingBudget: 0,
      uncertain: 0,
      creditsEstimated: 80,
      creditsReserved: 0,
      creditsSpent: 24,
      budget: null,
      resubmits: 0,
      finished: false,
      oldestUnarchived: null,
      file: null,
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
      paused: {
        kind: "manual",
        reason: "<b>maintenance</b>",
        since: "2026-01-01T00:00:00.000Z",
        accountId: "acct",
      },
      archivePaused: {
        kind: "store-unavailable",
        reason: "bucket gone",
        since: "2026-01-01T00:01:00.000Z",
        nextProbeAt: null,
      },
    } as unknown as Parameters<typeof renderBatchPage>[0]["status"];
    const page = renderBatchPage({
      status,
      query: { filter: "all", search: "", order: "manifest" },
      page: { rows: [], scanned: 0 },
      progress: summarizeProgress([], Date.parse("2026-01-01T00:10:00Z"), 7),
      failures: { groups: [], read: 0, complete: true },
      csrf: null,
    });
    expect(page).toContain("Archiving paused");
    expect(page).toContain("bucket gone");
    expect(page).toContain("3 finished images wait");
    expect(page).toContain("Submissions are paused (manual)");
    expect(page).toContain("&lt;b&gt;maintenance&lt;/b&gt;");
    expect(page).not.toContain("<b>maintenance</b>");
    expect(page).toContain('ETA <strong class="eta">unknown');
  });
});
