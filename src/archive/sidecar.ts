import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { maskUrlCredentials, shownParams } from "../core/redact-url.js";
import type { ArchivedImage } from "./copy.js";
import type { ArchivePutOptions, ArchiveStore, ArchiveStoreHead } from "./types.js";

/**
 * The sidecar: one JSON file beside a row's images (`<batch>/<rowId>.json`) holding the whole row
 * record. Any text (Chinese prompts, manifest columns) belongs here, never in object metadata,
 * which S3 keeps to ASCII.
 *
 * It is written last, with the task id and each image's size and checksum in its (ASCII) object
 * metadata: when a sidecar for the task is there, every image is too, so a re-run of the archive
 * stage reads that head and writes nothing.
 */

export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/** What of a row the sidecar carries; the ledger's row record has all of it. */
export interface SidecarRow {
  batch: string;
  id: string;
  line: number;
  prompt: string;
  params: Record<string, unknown>;
  metadata: Record<string, string>;
  taskIds: string[];
  creditsSpent: number;
  uncertain: number;
  resubmits: number;
  /** Epoch ms. */
  submittedAt?: number;
}

/** One stored image as the sidecar lists it. */
export interface SidecarImage {
  key: string;
  location: string;
  bytes: number;
  sha256: string;
  contentType: string;
}

/**
 * The sidecar's fields, as written (times as ISO 8601 text): the row's own fields, then the task
 * whose images these are (`taskIds` lists every task ever created for the row, resubmits included).
 */
export interface Sidecar
  extends Pick<SidecarRow, "batch" | "id" | "line" | "prompt" | "params" | "metadata" | "taskIds">,
    Pick<SidecarRow, "uncertain" | "resubmits"> {
  taskId: string;
  images: SidecarImage[];
  /** The first image's checksum and size. */
  sha256: string | undefined;
  bytes: number | undefined;
  credits: number;
  submittedAt: string | undefined;
  completedAt: string | undefined;
  archivedAt: string;
  /** text-to-image, image-to-image or edit. */
  model: string;
  /** The input image of image-to-image and edit: its URL, or the local file's path and sha256. */
  sourceImage?: { url?: string; path?: string; sha256?: string };
  /** Present when the images are copies of an earlier row's (no create, 0 credits). */
  reusedFrom?: SidecarReuse;
}

/** The row a reused row's images were copied from, and the task that made them. */
export interface SidecarReuse {
  batch: string;
  rowId: string;
  taskId: string;
  /** The first image's key in the store, as copied. */
  key: string;
}

/** The sidecar's key: `<batch>/<rowId>.json`, beside `<batch>/<rowId>.png`. */
export function sidecarKey(batch: string, rowId: string): string {
  return `${batch}/${rowId}.json`;
}

/**
 * Between a row's id and the number of its second, third... image. Not a character a row id may
 * hold (`[A-Za-z0-9._-]`), so no row's image can land on another's: with `-`, as before this
 * version, row `x`'s second image and row `x-2`'s first were both `x-2.png`, and the later one's
 * write replaced the other's (both rows archived, one image lost). Safe in S3 keys, URLs and
 * shells, and a file name on every common file system. Rows archived before keep the keys they
 * hold (the ledger and each sidecar name them).
 */
const IMAGE_NUMBER_SEPARATOR = "@";

/**
 * The key of a row's image `index` without its extension: `<batch>/<rowId>` for the first,
 * `<batch>/<rowId>@<n>` (n = index + 1) for the others.
 */
export function imageKeyBase(row: Pick<SidecarRow, "batch" | "id">, index: number): string {
  return `${row.batch}/${index === 0 ? row.id : `${row.id}${IMAGE_NUMBER_SEPARATOR}${index + 1}`}`;
}

/**
 * An image object's metadata: ASCII only (S3 refuses anything else), so no prompt and no manifest
 * text. `extra` (a reused copy's `reused-from`) goes after the row's id.
 */
export function objectMetadata(
  row: Pick<SidecarRow, "batch" | "id" | "prompt" | "params">,
  taskId: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const metadata: Record<string, string> = {
    "task-id": taskId,
    "prompt-sha256": createHash("sha256").update(row.prompt, "utf8").digest("hex"),
    batch: row.batch,
    "row-id": row.id,
    ...extra,
  };
  if (typeof row.params.seed === "number") metadata.seed = String(row.params.seed);
  return metadata;
}

export function buildSidecar(
  row: SidecarRow,
  images: SidecarImage[],
  task: { taskId: string; completedAt: number; archivedAt: number; reusedFrom?: SidecarReuse },
): Sidecar {
  return {
    batch: row.batch,
    id: row.id,
    line: row.line,
    prompt: row.prompt,
    params: shownParams(row.params),
    metadata: row.metadata,
    taskId: task.taskId,
    taskIds: row.taskIds,
    images,
    sha256: images[0]?.sha256,
    bytes: images[0]?.bytes,
    credits: row.creditsSpent,
    uncertain: row.uncertain,
    resubmits: row.resubmits,
    submittedAt: iso(row.submittedAt),
    completedAt: iso(task.completedAt),
    archivedAt: new Date(task.archivedAt).toISOString(),
    model: typeof row.params.model === "string" ? row.params.model : "text-to-image",
    ...sourceImage(row.params),
    ...(task.reusedFrom ? { reusedFrom: task.reusedFrom } : {}),
  };
}

/** Writes the sidecar, its task and images in its metadata: see `archivedImages`. */
export async function putSidecar(
  store: Pick<ArchiveStore, "put">,
  sidecar: Sidecar,
  options: Pick<ArchivePutOptions, "signal"> = {},
): Promise<void> {
  await putJson(store, sidecarKey(sidecar.batch, sidecar.id), sidecar, {
    signal: options.signal,
    metadata: { "task-id": sidecar.taskId, images: sidecar.images.map(encodeImage).join(",") },
  });
}

/**
 * The images a sidecar's head says are stored for `taskId`, or undefined when there is no
 * sidecar for that task (none yet, an older task's, or metadata this code cannot read).
 */
export function archivedImages(
  head: ArchiveStoreHead | undefined,
  key: string,
  taskId: string,
  store: Pick<ArchiveStore, "locationOf">,
): ArchivedImage[] | undefined {
  if (!head || head.metadata["task-id"] !== taskId || !head.metadata.images) return undefined;
  const folder = key.slice(0, key.lastIndexOf("/") + 1);
  const images = head.metadata.images.split(",").map((entry) => decodeImage(folder, entry, store));
  return images.every((image) => image !== undefined) ? (images as ArchivedImage[]) : undefined;
}

/**
 * Writes `value` as pretty-printed UTF-8 JSON under `key`, newline-terminated. Non-ASCII text
 * (Chinese prompts) belongs in `value`, never in `metadata` (ASCII only).
 */
export async function putJson(
  store: Pick<ArchiveStore, "put">,
  key: string,
  value: unknown,
  options: Pick<ArchivePutOptions, "metadata" | "signal"> = {},
): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`Cannot store ${typeof value} as JSON`);
  const body = Readable.from([Buffer.from(`${text}\n`, "utf8")]);
  await store.put(key, body, {
    contentType: JSON_CONTENT_TYPE,
    metadata: options.metadata,
    signal: options.signal,
  });
}

/** `<file name>:<bytes>:<sha256>`: the image's folder is the sidecar's. */
function encodeImage(image: Pick<SidecarImage, "key" | "bytes" | "sha256">): string {
  return `${image.key.slice(image.key.lastIndexOf("/") + 1)}:${image.bytes}:${image.sha256}`;
}

function decodeImage(
  folder: string,
  entry: string,
  store: Pick<ArchiveStore, "locationOf">,
): ArchivedImage | undefined {
  // A row id's characters, and `@` before a later image's number (IMAGE_NUMBER_SEPARATOR).
  const match = /^([A-Za-z0-9._@-]+\.(png|jpg)):(\d+):([0-9a-f]{64})$/.exec(entry);
  if (!match) return undefined;
  const key = `${folder}${match[1]}`;
  return {
    key,
    location: store.locationOf(key),
    bytes: Number(match[3]),
    sha256: match[4]!,
    contentType: match[2] === "jpg" ? "image/jpeg" : "image/png",
  };
}

/**
 * The row's input image as the sidecar names it (none for text-to-image); a presigned URL's
 * signature and credentials masked (they are secrets; the archive outlives them anyway).
 */
function sourceImage(params: Record<string, unknown>): Pick<Sidecar, "sourceImage"> {
  const { image_url: url, image_path: path, image_sha256: sha256 } = params;
  if (typeof path === "string") {
    return { sourceImage: { path, ...(typeof sha256 === "string" ? { sha256 } : {}) } };
  }
  return typeof url === "string" ? { sourceImage: { url: maskUrlCredentials(url) } } : {};
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}
