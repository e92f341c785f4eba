/**
 * The batch page as a person uses it, in Debian's headless Chromium (playwright-core, one launch):
 * after a demo-like run (simulator, a real worker, a folder archive), the gallery shows every
 * archived image as a decoded thumbnail, the filter and the detail view work, a failed row shows
 * its error and is retried from the page with actions on, and refused with them off; without the
 * token nothing is served. `KIE_GALLERY_SCREENSHOT=docs/gallery.png` writes the README's picture.
 */
import { existsSync } from "node:fs";
import { PassThrough } from "node:stream";
import { type Browser, chromium, type Locator } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { createFolderStore } from "../../src/archive/folder-store.js";
import { retryInScope } from "../../src/dashboard/batch-routes.js";
import { type Dashboard, startDashboard } from "../../src/dashboard/server.js";
import { readFleetState } from "../../src/report/fleet-state.js";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

const CHROMIUM = "/usr/bin/chromium";
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
];
const TOKEN = "gallery-browser-token-0123456789";
const BATCH = "spring-gallery";
const SIZES = ["landscape_4_3", "portrait_4_3", "square", "landscape_16_9", "portrait_16_9", "landscape_3_2"];
const PROMPTS = [
  "a lighthouse at dusk",
  "a red fox in fresh snow",
  "an orchard in bloom",
  "a harbour at dawn",
  "a glacier under stars",
  "a busy spice market",
];

/** The text a person sees in an element (rendered, unlike textContent). */
function seen(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point of this test
  return locator.innerText();
}

/** The page's document as functions run in the browser see it (this project compiles without the DOM lib). */
interface ImageLike {
  complete: boolean;
  naturalWidth: number;
}
interface InPage {
  document: { querySelectorAll(s: string): ArrayLike<ImageLike>; querySelector(s: string): ImageLike | null };
}

let harness: WorkerHarness | undefined;
let browser: Browser | undefined;
const dashboards: Dashboard[] = [];

afterAll(async () => {
  await browser?.close();
  for (const d of dashboards) await d.close();
  await harness?.close();
});

describe("the batch page in headless Chromium", () => {
  it.skipIf(!HAS_CHROMIUM)(
    "shows the batch's images, filters, a detail view, and retries a failed row only with actions on",
    async () => {
      harness = await startHarness({
        sim: { latency: { minMs: 20, maxMs: 60 }, recordLagMs: 10 },
        env: { KIE_POLL_INTERVAL: "100ms", KIE_MAX_RESUBMITS: "1" },
      });
      const p = harness.pipeline;
      await harness.worker();
      // One row fails at KIE (every task fails while the outcome is set), then six succeed.
      p.sim.setNextOutcome("fail");
      await p.addRows(BATCH, [{ id: "doomed", prompt: "a castle made of glass", line: 2 }]);
      await p.waitFinished(BATCH);
      p.sim.setNextOutcome(undefined);
      await p.addRows(
        BATCH,
        PROMPTS.map((prompt, i) => ({
          id: `img-${i + 1}`,
          prompt,
          line: i + 3,
          params: { image_size: SIZES[i] },
          metadata: { collection: i < 3 ? "spring" : "winter" },
        })),
      );
      const done = await p.waitFinished(BATCH, 30_000);
      expect([done.archived, done.failed]).toEqual([6, 1]);
      const failed = await p.ledger.getRow(BATCH, "doomed");
      expect(failed?.error).toBeTruthy();

      const store = createFolderStore(p.archiveDir);
      const common = {
        port: 0,
        queuePrefix: p.prefix,
        ledger: p.ledger,
        queues: p.queues.queues,
        fleet: async () => readFleetState([]),
        ping: () => p.redis.ping(),
        store,
        refreshSeconds: 0,
        authToken: TOKEN,
        retry: (batch: string, scope: { rowId?: string; error?: string }) =>
          retryInScope(
            {
              ledger: p.ledger,
              queues: p.queues,
              clock: { now: () => Date.now() },
              out: new PassThrough().resume(),
            },
            batch,
            scope,
          ),
      };
      const withActions = await startDashboard({ ...common, allowActions: true });
      dashboards.push(withActions);
      const readOnly = await startDashboard(common);
      dashboards.push(readOnly);

      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const batchUrl = new URL(`/batches/${BATCH}`, withActions.url).href;

      // --- without the token: refused, then the login page lets us in ---
      const refused = await page.goto(batchUrl);
      expect(refused?.status()).toBe(401);
      expect(
        (
          await context.request.get(new URL(`/batches/${BATCH}/rows/img-1/image/0`, withActions.url).href)
        ).status(),
      ).toBe(401);
      await page.goto(new URL(`/login?next=/batches/${BATCH}`, withActions.url).href);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(batchUrl), page.click('button[type="submit"]')]);

      // --- the gallery: every archived image, decoded ---
      const thumbs = page.locator(".grid .tile img");
      expect(await thumbs.count()).toBe(6);
      await page.waitForFunction(() =>
        Array.from((globalThis as unknown as InPage).document.querySelectorAll(".grid .tile img")).every(
          (img) => img.complete,
        ),
      );
      const widths = await thumbs.evaluateAll((imgs) =>
        imgs.map((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      );
      expect(widths).toEqual([256, 256, 256, 256, 256, 256]);
      expect(await thumbs.first().getAttribute("alt")).toBe(PROMPTS[0]);
      expect(await seen(page.locator(".tile.state-failed"))).toContain("failed");
      const screenshot = process.env.KIE_GALLERY_SCREENSHOT;
      if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

      // --- the filter and the search ---
      await page.click('a.filter[data-filter="failed"]');
      await page.waitForURL(/state=failed/);
      expect(await page.locator(".grid .tile").count()).toBe(1);
      await page.goto(batchUrl);
      await page.fill('input[name="q"]', "winter");
      await Promise.all([page.waitForURL(/q=winter/), page.press('input[name="q"]', "Enter")]);
      expect(await page.locator(".grid .tile img").count()).toBe(3);

      // --- the detail view, and its neighbours by arrow key ---
      await page.goto(`${batchUrl}?state=archived`);
      await Promise.all([page.waitForURL(/rows\/img-1/), page.locator(".grid .tile").first().click()]);
      await page.waitForFunction(
        () => (globalThis as unknown as InPage).document.querySelector(".full-image")?.naturalWidth === 384,
      );
      expect(await seen(page.locator("td.prompt"))).toBe(PROMPTS[0]);
      expect(await seen(page.locator("table.record"))).toContain("sha256:");
      await Promise.all([page.waitForURL(/rows\/img-2\?state=archived/), page.keyboard.press("ArrowRight")]);
      await Promise.all([page.waitForURL(/rows\/img-1\?state=archived/), page.keyboard.press("ArrowLeft")]);

      // --- the failed row: its error; no retry without actions, refused if posted anyway ---
      const rowPath = `/batches/${BATCH}/rows/doomed`;
      // Its own browser context: the other dashboard's login cookie has the same name and host.
      const other = await browser.newContext();
      const plain = await other.newPage();
      await plain.goto(new URL(`/login?next=${rowPath}`, readOnly.url).href);
      await plain.fill('input[name="token"]', TOKEN);
      await Promise.all([plain.waitForURL(/rows\/doomed/), plain.click('button[type="submit"]')]);
      expect(await seen(plain.locator(".row-error"))).toBe(failed!.error);
      expect(await plain.locator("form.retry").count()).toBe(0);
      await other.close();
      const forbidden = await context.request.post(new URL(`/batches/${BATCH}/retry`, readOnly.url).href, {
        form: { scope: "row", row: "doomed", csrf: "x" },
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(forbidden.status()).toBe(403);
      expect((await p.ledger.getRow(BATCH, "doomed"))?.status).toBe("failed");

      // --- with actions on: the button puts it back, and the worker archives it ---
      await page.goto(new URL(rowPath, withActions.url).href);
      await Promise.all([page.waitForURL(/retried=1/), page.click("form.retry button")]);
      expect(await seen(page.locator(".notice"))).toContain("1 failed rows went back");
      await until(
        "the retried row archived",
        async () => (await p.ledger.getRow(BATCH, "doomed"))?.status === "archived",
        {
          timeoutMs: 20_000,
        },
      );
      await context.close();
    },
    90_000,
  );
});
