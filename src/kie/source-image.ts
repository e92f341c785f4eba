/**
 * What a row's stored parameters say about its mode and input image, for results and sidecars:
 * the model (text-to-image when none is stored) and the source image (its URL, or the local file's
 * path and sha256; an image URL's credentials masked).
 */
import { maskUrlCredentials } from "../core/redact-url.js";
import { KIE_MODELS, type KieModel } from "./types.js";

export interface SourceImage {
  /** The image_url the row gave, a presigned URL's signature and credentials masked (`maskUrlCredentials`). */
  url?: string;
  /** The local file the row gave (absolute), uploaded before the create. */
  path?: string;
  /** That file's sha256 when the row was enqueued. */
  sha256?: string;
}

export function modelOf(params: Readonly<Record<string, unknown>>): KieModel {
  const model = params.model;
  return typeof model === "string" && (KIE_MODELS as readonly string[]).includes(model)
    ? (model as KieModel)
    : "text-to-image";
}

export function sourceImageOf(params: Readonly<Record<string, unknown>>): SourceImage | undefined {
  const { image_url: url, image_path: path, image_sha256: sha256 } = params;
  if (typeof path === "string") return { path, ...(typeof sha256 === "string" ? { sha256 } : {}) };
  if (typeof url === "string") return { url: maskUrlCredentials(url) };
  return undefined;
}
