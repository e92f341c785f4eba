/**
 * The dashboard as a person sees it, in Debian's headless Chromium driven by playwright-core (no
 * browser download works here). The one test of the suite allowed to skip: where no Chromium is
 * installed (`.ci/run` installs it).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import {
  BATCH,
  type DashboardFixture,
  HOSTILE_ERROR,
  HOSTILE_PROMPT,
  OTHER,
  PAUSE_REASON,
  PLAIN_ERROR,
  startDashboardFixture,
} from "../helpers/dashboard-fixture.js";
import { moveRow } from "../integration/ops-helpers.js";

const CHROMIUM = "/usr/bin/chromium";
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Screenshots land here; the path is printed so a person can look at them. */
const SCREENSHOT_DIR_ENV = "KIE_DASHBOARD_SCREENSHOTS";

let fixture: DashboardFixture | undefined;
let browser: Browser | undefined;
let shots: string | undefined;

afterAll(async () => {
  await browser?.close();
  await fixture?.close();
  if (shots && !process.env[SCREENSHOT_DIR_ENV]) await rm(shots, { recursive: true, force: true });
});

/** The text a person sees in an element: rendered (CSS applied, hidden parts left out), unlike textContent. */
function seen(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point of this test
  return locator.innerText();
}

/** A page that may only reach loopback: bull-board asks Google for fonts, which must not leave the machine. */
async function loopbackPage(b: Browser): Promise<{ page: Page; dialogs: string[]; blocked: string[] }> {
  const page = await b.newPage({ viewport: { width: 1200, height: 900 } });
  const dialogs: string[] = [];
  const blocked: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.route("**/*", (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === "127.0.0.1" || hostname === "localhost") return route.continue();
    blocked.push(route.request().url());
    return route.abort();
  });
  return { page, dialogs, blocked };
}

describe("the dashboard in headless Chromium", () => {
  it.skipIf(!HAS_CHROMIUM)(
    `shows the batch overview and bull-board's three queues as a person sees them${HAS_CHROMIUM ? "" : ` [SKIPPED: no Chromium at ${CHROMIUM}; install Debian's package: apt-get install chromium]`}`,
    async () => {
      fixture = await startDashboardFixture({ refreshSeconds: 2 });
      shots = process.env[SCREENSHOT_DIR_ENV] ?? (await mkdtemp(join(tmpdir(), "kie-dashboard-")));
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
      const { page, dialogs } = await loopbackPage(browser);

      // --- the overview ---
      await page.goto(fixture.dashboard.url);
      const card = page.locator(`article[data-batch="${BATCH}"]`);
      await card.waitFor();
      const text = await seen(card);
      expect(text).toContain(BATCH);
      expect(text).toContain(
        "3/11 archived · 2 failed · 1 cancelled · 3 in progress · 2 queued (54% finished)",
      );
      expect(text).toMatch(/estimated\s*88/);
      expect(text).toMatch(/spent\s*32/);
      expect(text).toMatch(/budget\s*100/);
      expect(text).toContain(PLAIN_ERROR);
      // Hostile text shows as the characters it is made of, and never runs.
      expect(text).toContain(HOSTILE_ERROR);
      expect(text).toContain(HOSTILE_PROMPT.slice(0, 40));
      expect(text).toContain(`(manual) since`);
      expect(text).toContain(PAUSE_REASON);
      const warning = card.locator(".warning[role=alert]");
      expect(await warning.isVisible()).toBe(true);
      expect(await seen(warning)).toMatch(/Warning: row old1 finished 1d 6h ago and is not archived yet/);
      expect(await seen(warning)).toMatch(/12d 1[78]h left before KIE deletes it/);
      const archived = await card.locator(".seg.archived").boundingBox();
      const bar = await card.locator(".bar").boundingBox();
      expect(archived!.width / bar!.width).toBeCloseTo(3 / 11, 1);
      expect(await seen(page.locator(`article[data-batch="${OTHER}"]`))).toContain("finished");
      expect(await page.locator("script, img").count()).toBe(0);
      const overviewShot = join(shots, "overview.png");
      await page.screenshot({ path: overviewShot, fullPage: true });
      expect((await stat(overviewShot)).size).toBeGreaterThan(10_000);

      // The page follows the batch by itself: a row cancelled now shows without a reload by us.
      await moveRow(fixture.fx.ledger, BATCH, "q2", "cancelled");
      await card
        .filter({ hasText: "2 failed · 2 cancelled · 3 in progress · 1 queued" })
        .waitFor({ timeout: 10_000 });
      expect(dialogs).toEqual([]);

      // --- bull-board (rendered client-side: wait for the queue names) ---
      await page.goto(new URL("/queues", fixture.dashboard.url).href);
      for (const stage of ["submit", "poll", "archive"]) {
        const link = page.locator(`a[href="/queues/queue/${stage}"]`).first();
        await link.waitFor({ timeout: 15_000 });
        expect((await seen(link)).trim()).toBe(stage);
      }
      await page.getByText("1 Job", { exact: true }).waitFor({ timeout: 15_000 });
      const boardShot = join(shots, "bull-board.png");
      await page.screenshot({ path: boardShot, fullPage: true });
      expect((await stat(boardShot)).size).toBeGreaterThan(10_000);
      expect(dialogs).toEqual([]);
      console.log(`[dashboard-browser] screenshots: ${overviewShot} ${boardShot}`);
    },
    60_000,
  );
});
