/** The routes of a row's images: the full image streamed from the store, and its thumbnail. */
import { pipeline } from "node:stream/promises";
import { type Request, type Response, Router } from "express";
import type { ArchiveStore } from "../archive/types.js";
import type { Ledger, RowRecord } from "../ledger/index.js";
import { keyInBatch, sameEtag } from "./image-guard.js";
import { placeholderSvg, type Thumbnailer } from "./thumbs.js";

export interface ImageRoutesOptions {
  ledger: Pick<Ledger, "getRow">;
  /** Where archived images are read from; absent: every image is a 404 and every thumbnail a placeholder. */
  store?: Pick<ArchiveStore, "get">;
  thumbnailer?: Thumbnailer;
}

/** Full images may be cached this long by the browser (revalidated by ETag after). */
const IMAGE_MAX_AGE_S = 300;

export function imageRouter(options: ImageRoutesOptions): Router {
  const router = Router();
  const { ledger } = options;

  router.get("/batches/:batch/rows/:row/image/:n", async (req, res) => {
    const found = await imageOf(ledger, req, res);
    if (!found || !options.store) return found ? notFound(res, "no archive store") : undefined;
    const controller = abortOnClose(res);
    const object = await options.store
      .get(found.key, { signal: controller.signal })
      .catch((error: unknown) => {
        // The client went away while the store was read: nobody to answer, nothing to report.
        if (controller.signal.aborted) return null;
        throw error;
      });
    if (object === null) return;
    if (!object) return notFound(res, `the store has no object ${found.key}`);
    const isImage = /^image\/(png|jpeg|webp|gif|avif)$/.test(object.contentType);
    res.set({
      ETag: object.etag,
      "Cache-Control": `private, max-age=${IMAGE_MAX_AGE_S}`,
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'none'; sandbox",
    });
    if (sameEtag(req.headers["if-none-match"], object.etag)) {
      object.body.destroy();
      return void res.status(304).end();
    }
    res.status(200).set({
      "Content-Type": isImage ? object.contentType : "application/octet-stream",
      "Content-Length": String(object.size),
      ...(isImage ? {} : { "Content-Disposition": "attachment" }),
    });
    await pipeline(object.body, res).catch(() => {
      // The client went away or the store's stream broke mid-body: nothing left to answer.
    });
  });

  router.get("/batches/:batch/rows/:row/thumb/:n", async (req, res) => {
    const found = await imageOf(ledger, req, res);
    if (!found) return;
    const etag = `"thumb-${found.sha256.slice(0, 40)}"`;
    if (sameEtag(req.headers["if-none-match"], etag)) return void res.status(304).set("ETag", etag).end();
    const { store, thumbnailer } = options;
    const thumb =
      store && thumbnailer
        ? await thumbnailer.get(found.sha256, (signal) => store.get(found.key, { signal }))
        : ({ kind: "placeholder", reason: "no archive store" } as const);
    if (thumb.kind === "placeholder") {
      // Why there is no thumbnail (too large, does not decode, the store failed), for whoever
      // looks; the tile still links the row's page, which links the full image.
      res.status(200).set({
        "Cache-Control": "no-store",
        "X-Thumbnail": "placeholder",
        "X-Thumbnail-Reason": headerText(thumb.reason),
      });
      return void res.type("image/svg+xml").send(placeholderSvg("label" in thumb ? thumb.label : undefined));
    }
    res
      .status(200)
      .set({ ETag: etag, "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff" });
    res.type("image/jpeg").send(thumb.bytes);
  });

  return router;
}

/** The row, or undefined (also for a name the ledger refuses). */
export async function findRow(
  ledger: Pick<Ledger, "getRow">,
  batch: string,
  rowId: string,
): Promise<RowRecord | undefined> {
  try {
    return await ledger.getRow(batch, rowId);
  } catch (error) {
    // A name the ledger refuses names no row.
    if ((error as { code?: unknown }).code === "invalid_name") return undefined;
    throw error;
  }
}

/** The row's n-th image, refused (403) when its key is outside the batch's prefix. */
async function imageOf(
  ledger: Pick<Ledger, "getRow">,
  req: Request,
  res: Response,
): Promise<{ key: string; sha256: string } | undefined> {
  const params = req.params as Record<string, string>;
  const batch = params.batch!;
  const row = await findRow(ledger, batch, params.row!);
  const n = Number(params.n);
  const image = row && Number.isInteger(n) && n >= 0 ? row.images[n] : undefined;
  if (!image) {
    notFound(res, "no such image");
    return undefined;
  }
  if (!keyInBatch(batch, image.key)) {
    res
      .status(403)
      .type("text/plain")
      .send("kie-batch dashboard: that object is outside the batch's prefix\n");
    return undefined;
  }
  return { key: image.key, sha256: image.sha256 };
}

/** `text` as a header value: printable ASCII only (others become "?"), at most 300 characters. */
function headerText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 300);
}

export function notFound(res: Response, what: string): void {
  res.status(404).set("Cache-Control", "no-store").type("text/plain").send(`kie-batch dashboard: ${what}\n`);
}

/** A signal that aborts when the client goes away before the answer is finished. */
function abortOnClose(res: Response): AbortController {
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort(new Error("client went away"));
  });
  return controller;
}
