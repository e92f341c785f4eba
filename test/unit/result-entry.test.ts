import { describe, expect, it } from "vitest";
import {
  decodeEntry,
  decodeJsonEntry,
  encodeEntry,
  encodeJsonEntry,
  type ResultEntry,
} from "../../src/ledger/result-entry.js";

const SHA = "0123456789abcdef".repeat(4);

const entry = (over: Partial<ResultEntry> = {}): ResultEntry => ({
  images: [{ key: "demo/calligraphy.png", bytes: 34_398, sha256: SHA, contentType: "image/png" }],
  taskId: "qwen_task_0123456789abcdef",
  batch: "demo",
  rowId: "calligraphy",
  archivedAt: 1_796_550_980_236,
  ...over,
});

describe("a result index entry's value", () => {
  it("is |-joined: base 36 numbers, the sha256 in base64url, the row's own key as ~, an implied type left out", () => {
    const value = encodeEntry(entry());
    expect(value).toBe(
      `${(1_796_550_980_236).toString(36)}|qwen_task_0123456789abcdef|demo|calligraphy|~.png|` +
        `${(34_398).toString(36)}|${Buffer.from(SHA, "hex").toString("base64url")}|`,
    );
    expect(value!.length).toBeLessThan(110);
    expect(decodeEntry(value!)).toEqual(entry());
  });

  it.each([
    [
      "several images, the row's own and another's, a type that is not the extension's",
      entry({
        images: [
          { key: "demo/calligraphy.jpg", bytes: 1, sha256: SHA, contentType: "image/jpeg" },
          {
            key: "demo/calligraphy-2.webp",
            bytes: 25_000_000,
            sha256: "f".repeat(64),
            contentType: "image/webp",
          },
          { key: "other/x.png", bytes: 0, sha256: SHA, contentType: "image/png" },
          { key: "other/no-extension", bytes: 7, sha256: SHA, contentType: "application/octet-stream" },
        ],
      }),
    ],
    ["a market task id", entry({ taskId: "9f8e7d6c5b4a39281706f5e4d3c2b1a0" })],
  ])("round-trips: %s", (_, value) => {
    expect(decodeEntry(encodeEntry(value)!)).toEqual(value);
  });

  it("leaves a JPEG's type out of the value as it does a PNG's (.jpg is image/jpeg)", () => {
    const jpeg = entry({
      images: [{ ...entry().images[0]!, key: "demo/calligraphy.jpg", contentType: "image/jpeg" }],
    });
    const value = encodeEntry(jpeg)!;
    expect(value.endsWith("|")).toBe(true);
    expect(decodeEntry(value)).toEqual(jpeg);
  });

  it.each([
    ["a | in a field", entry({ taskId: "a|b" })],
    ["an image key starting with ~", entry({ images: [{ ...entry().images[0]!, key: "~/x.png" }] })],
    ["a sha256 that is not 64 hex", entry({ images: [{ ...entry().images[0]!, sha256: "abc" }] })],
  ])("is not written for %s", (_, value) => {
    expect(encodeEntry(value)).toBeUndefined();
  });

  it.each([
    "",
    "{}",
    "mxbo2g7g|t|b|r",
    "mxbo2g7g|t|b|r|~.png|qji|short|",
    `mxbo2g7g|t|b|r|~|qji|${"A".repeat(43)}|`, // no extension: no implied type
    `MXBO|t|b|r|~.png|qji|${"A".repeat(43)}|`,
  ])("an unreadable value %j is a miss", (value) => {
    expect(decodeEntry(value)).toBeUndefined();
  });

  it("the previous version's JSON is read, and written again byte for byte (to forget it)", () => {
    const json = `{"t":"qwen_task_0123456789abcdef","b":"demo","r":"calligraphy","a":1796550980236,"i":[["demo/calligraphy.png",34398,"${SHA}","image/png"]]}`;
    expect(decodeJsonEntry(json)).toEqual(entry());
    expect(encodeJsonEntry(entry())).toBe(json);
    expect(decodeJsonEntry("{not json")).toBeUndefined();
  });
});
