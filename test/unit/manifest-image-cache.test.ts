import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ImageFiles } from "../../src/manifest/image-file.js";

const dir = mkdtempSync(join(tmpdir(), "kie-image-cache-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const png = (body: string) => Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.from(body)]);
const sha = (check: ReturnType<ImageFiles["check"]>) => (check.ok ? check.sha256 : check.message);

describe("local input images: the checks kept", () => {
  it("keep a file used again without reading it, but only the last ones (10,000 by default): memory stays flat with a photo a row", () => {
    const files = new ImageFiles({ baseDir: dir, cachedFiles: 100 });
    writeFileSync(join(dir, "first.png"), png("first"));
    writeFileSync(join(dir, "recent.png"), png("recent"));
    const first = sha(files.check("first.png"));
    for (let i = 0; i < 100; i++) {
      writeFileSync(join(dir, `${i}.png`), png(`row ${i}`));
      files.check(`${i}.png`);
      // One file used all along (a shared product shot) stays among the last used.
      if (i % 10 === 9) files.check("recent.png");
    }
    const recent = sha(files.check("recent.png"));
    // Both change on disk: the one still kept answers as read; the one pushed out is read again.
    writeFileSync(join(dir, "first.png"), png("first, edited"));
    writeFileSync(join(dir, "recent.png"), png("recent, edited"));
    expect(sha(files.check("recent.png"))).toBe(recent);
    const again = sha(files.check("first.png"));
    expect(again).not.toBe(first);
    expect(again).toMatch(/^[0-9a-f]{64}$/);
  });
});
