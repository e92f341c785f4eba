/**
 * A store that cannot take the image for good (here: ARCHIVE_DIR is a file, not a folder) fails
 * the row at once with the reason, instead of retrying for as long as the image lives.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";

describe("worker: an archive target that cannot work", () => {
  const harnesses = harnessPerTest();

  it("fails the row promptly, naming the store's error, when ARCHIVE_DIR is not a folder", async () => {
    const h = await harnesses.start();
    const notAFolder = join(h.pipeline.archiveDir, "plain-file");
    await writeFile(notAFolder, "not a folder");
    await h.worker({ env: { ARCHIVE_DIR: notAFolder } });
    await h.pipeline.addRows("bad-store", [{ id: "x" }]);
    const summary = await h.pipeline.waitFinished("bad-store", 15_000);
    expect(summary).toMatchObject({ total: 1, failed: 1, archived: 0 });
    const row = await h.pipeline.ledger.getRow("bad-store", "x");
    expect(row?.error).toMatch(/^archive failed: .*plain-file/);
    expect(row?.taskId).toBeDefined();
  });
});
