import { describe, expect, it } from "vitest";
import { createFailureReader } from "../../src/dashboard/failures.js";
import { escapeHtml, html, raw } from "../../src/dashboard/html.js";
import type { BatchOverview, Overview } from "../../src/dashboard/overview.js";
import { renderOverviewPage } from "../../src/dashboard/page.js";
import type { RowRecord } from "../../src/ledger/index.js";

describe("html", () => {
  it("escapes every interpolated value, and only those", () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
    const value = "<script>alert(1)</script>";
    const nested = html`<b>${value}</b>`;
    expect(html`<p>${nested} ${[value, raw("<i>ok</i>"), 3]} ${null}${undefined}${false}</p>`.text).toBe(
      "<p><b>&lt;script&gt;alert(1)&lt;/script&gt;</b> &lt;script&gt;alert(1)&lt;/script&gt;<i>ok</i>3 </p>",
    );
  });
});

function batch(overrides: Partial<BatchOverview>): BatchOverview {
  return {
    batch: "b1",
    total: 4,
    queued: 1,
    submitted: 0,
    generating: 1,
    archiving: 0,
    archived: 1,
    failed: 1,
    cancelled: 0,
    waitingBudget: 0,
    uncertain: 0,
    creditsEstimated: 32,
    creditsReserved: 0,
    creditsSpent: 8,
    paused: null,
    budget: null,
    resubmits: 0,
    finished: false,
    oldestUnarchived: null,
    file: null,
    createdAt: "2025-01-01T00:00:00.000Z",
    updatedAt: "2025-01-01T00:00:00.000Z",
    finishedAt: null,
    failures: [],
    ...overrides,
  };
}

function overview(batches: BatchOverview[], extra: Partial<Overview> = {}): Overview {
  return {
    generatedAt: "2025-01-01T00:00:00.000Z",
    queuePrefix: "kie",
    paused: null,
    accounts: [],
    queues: [],
    batches,
    ...extra,
  };
}

describe("the overview page", () => {
  it("renders user text from every field as text", () => {
    const pause = {
      kind: "manual" as const,
      reason: "</span><script>x()</script>",
      since: "2025-01-01T00:00:00.000Z",
      accountId: "0123456789abcdef",
    };
    const page = renderOverviewPage(
      overview(
        [
          batch({
            file: '"><img src=x onerror=alert(1)>.csv',
            paused: pause,
            failures: [
              { rowId: "r1", line: 7, prompt: "<script>p()</script>", error: "<iframe src=//evil>" },
            ],
          }),
        ],
        { paused: pause, accounts: [{ accountId: pause.accountId, paused: pause }] },
      ),
    );
    expect(page).not.toMatch(/<script|<img|<iframe/i);
    expect(page).toContain("&lt;/span&gt;&lt;script&gt;x()&lt;/script&gt;");
    expect(page).toContain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.csv");
    expect(page).toContain("&lt;script&gt;p()&lt;/script&gt;");
    expect(page).toContain("&lt;iframe src=//evil&gt;");
  });

  it("marks a stage queue paused in BullMQ and says how to resume it; none paused, nothing said", () => {
    const queues = (["submit", "poll", "archive"] as const).map((stage) => ({
      stage,
      waiting: 3,
      prioritized: 0,
      delayed: 0,
      active: 0,
      failed: 0,
    }));
    const page = renderOverviewPage(overview([], { queues, queuesPaused: ["submit"] }));
    expect(page).toContain('<th scope="row">submit <span class="badge paused">paused in BullMQ</span></th>');
    expect(page).toContain('<th scope="row">poll</th>');
    expect(page).toContain("Paused in BullMQ (bull-board's pause button): submit.");
    expect(renderOverviewPage(overview([], { queues }))).not.toContain("paused in BullMQ");
  });

  it("names an API key rows wait for that no running worker holds, in the fleet section", () => {
    const keyWaits = [
      {
        accountId: "bbbbbbbbbbbbbbbb",
        account: "team",
        stage: "poll" as const,
        lastAt: "2025-01-01T00:00:00.000Z",
      },
      { accountId: "cccccccccccccccc", stage: "archive" as const, lastAt: "2025-01-01T00:00:00.000Z" },
    ];
    const page = renderOverviewPage(overview([], { keyWaits }));
    expect(page).toContain(
      "API key <code>bbbbbbbbbbbbbbbb</code> (team) is held by no running worker that polls",
    );
    expect(page).toContain(
      "API key <code>cccccccccccccccc</code> is held by no running worker that archives, and archive jobs wait for it",
    );
    expect(page).not.toContain("`");
    expect(renderOverviewPage(overview([]))).not.toContain("held by no running worker");
  });

  it("says how to start when there are no batches, and can turn the refresh off", () => {
    const page = renderOverviewPage(overview([]), { refreshSeconds: 0 });
    expect(page).toContain("No batches under queue prefix <code>kie</code>");
    expect(page).not.toContain("http-equiv");
  });

  it("cuts long errors and prompts on the page without splitting a character", () => {
    const error = `${"e".repeat(399)}🙂 ZZEND`;
    const prompt = `${"p".repeat(79)}🦊 and more`;
    const page = renderOverviewPage(
      overview([batch({ failures: [{ rowId: "r1", line: 2, prompt, error }] })]),
    );
    expect(page).toContain(`${"e".repeat(399)}🙂…`);
    expect(page).toContain(`${"p".repeat(79)}🦊…`);
    expect(page).not.toContain("ZZEND");
  });
});

describe("the failure reader", () => {
  function ledgerOf(failedIds: string[]) {
    let walks = 0;
    let yielded = 0;
    return {
      get walks() {
        return walks;
      },
      get yielded() {
        return yielded;
      },
      ids: failedIds,
      // The failed index, one row per page as it is read (a page is what the reader asks for).
      async *statePages() {
        walks++;
        for (const [seq, id] of failedIds.entries()) {
          yielded++;
          const row = { id, seq, line: 2, prompt: `prompt ${id}`, error: `error ${id}` } as RowRecord;
          yield [{ row, enteredAt: seq }];
        }
      },
    };
  }

  it("stops at its limit, and walks the rows again only when the failed count changes or the list is old", async () => {
    let now = 0;
    const ledger = ledgerOf(["a", "b", "c", "d"]);
    const reader = createFailureReader({ ledger, limit: 2, maxAgeMs: 60_000, clock: { now: () => now } });

    const [first, concurrent] = await Promise.all([reader.read("b1", 4), reader.read("b1", 4)]);
    expect(first.map((f) => f.rowId)).toEqual(["a", "b"]);
    expect(concurrent).toBe(first);
    expect(ledger.walks).toBe(1);
    expect(ledger.yielded).toBe(2);

    now += 30_000;
    await reader.read("b1", 4);
    expect(ledger.walks).toBe(1);
    await reader.read("b1", 5);
    expect(ledger.walks).toBe(2);
    now += 60_000;
    await reader.read("b1", 5);
    expect(ledger.walks).toBe(3);

    expect(await reader.read("b1", 0)).toEqual([]);
    expect(ledger.walks).toBe(3);
  });
});
