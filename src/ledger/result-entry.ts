/**
 * The value of a result index entry (result-index.ts), and the entry it stands for.
 *
 * Written as fields joined by `|` (~105 B for one image, against ~200 B of the JSON written before
 * 2026-12-06): `<archivedAt>|<taskId>|<batch>|<rowId>` then per image
 * `<key>|<bytes>|<sha256>|<contentType>`, numbers in base 36, the sha256 in base64url (43 chars),
 * and an image key under the row's own name (`<batch>/<rowId>.png`, `<batch>/<rowId>@2.png`; `-2` before this version)
 * written as `~` and what follows that name, a content type that is `image/<the key's extension>`
 * left empty. An entry with a `|` in a field, or an image key that starts with `~`, is not written
 * (never by the archive stage's naming): it only costs a reuse.
 *
 * The JSON form (`{"t":task,"b":batch,"r":row,"a":ms,"i":[[key,bytes,sha256,contentType],...]}`)
 * is still read and re-encoded (to remove such an entry only while it is what was read).
 */

/** One archived image of an entry. */
interface ResultImage {
  /** The store key (`batch/row.png`); the location is the store's `locationOf(key)`. */
  key: string;
  bytes: number;
  /** 64 hex. */
  sha256: string;
  contentType: string;
}

export interface ResultEntry {
  images: ResultImage[];
  /** The task that generated the images (checked against the object's `task-id` metadata). */
  taskId: string;
  /** The row the images were archived for. */
  batch: string;
  rowId: string;
  /** Epoch ms. */
  archivedAt: number;
}

const SEP = "|";
/** Fields before the images; then four per image. */
const HEAD_FIELDS = 4;
const IMAGE_FIELDS = 4;
const OWN_NAME = "~";
const HEX_SHA256 = /^[0-9a-f]{64}$/;
const B64_SHA256 = /^[A-Za-z0-9_-]{43}$/;
const BASE36 = /^[0-9a-z]{1,12}$/;

/** The compact value of `entry`, or undefined when a field cannot be written in it (see above). */
export function encodeEntry(entry: ResultEntry): string | undefined {
  const own = `${entry.batch}/${entry.rowId}`;
  const fields = [entry.archivedAt.toString(36), entry.taskId, entry.batch, entry.rowId];
  for (const image of entry.images) {
    if (image.key.startsWith(OWN_NAME) || !HEX_SHA256.test(image.sha256)) return undefined;
    const key = image.key.startsWith(own) ? `${OWN_NAME}${image.key.slice(own.length)}` : image.key;
    const sha256 = Buffer.from(image.sha256, "hex").toString("base64url");
    const contentType = image.contentType === impliedType(image.key) ? "" : image.contentType;
    fields.push(key, image.bytes.toString(36), sha256, contentType);
  }
  if (fields.some((field) => field.includes(SEP))) return undefined;
  if (!Number.isSafeInteger(entry.archivedAt) || entry.images.some((i) => !Number.isSafeInteger(i.bytes)))
    return undefined;
  return fields.join(SEP);
}

/** The entry of a compact value, or undefined for one this code cannot read (a miss). */
export function decodeEntry(value: string): ResultEntry | undefined {
  const fields = value.split(SEP);
  const count = (fields.length - HEAD_FIELDS) / IMAGE_FIELDS;
  if (!Number.isInteger(count) || count < 1) return undefined;
  const [archivedAt, taskId, batch, rowId] = fields as [string, string, string, string];
  if (!BASE36.test(archivedAt) || taskId === "" || batch === "" || rowId === "") return undefined;
  const images: ResultImage[] = [];
  for (let at = HEAD_FIELDS; at < fields.length; at += IMAGE_FIELDS) {
    const [key, bytes, sha256, contentType] = fields.slice(at, at + IMAGE_FIELDS) as [
      string,
      string,
      string,
      string,
    ];
    if (key === "" || !BASE36.test(bytes) || !B64_SHA256.test(sha256)) return undefined;
    const fullKey = key.startsWith(OWN_NAME) ? `${batch}/${rowId}${key.slice(OWN_NAME.length)}` : key;
    const type = contentType === "" ? impliedType(fullKey) : contentType;
    if (type === undefined) return undefined;
    images.push({
      key: fullKey,
      bytes: Number.parseInt(bytes, 36),
      sha256: Buffer.from(sha256, "base64url").toString("hex"),
      contentType: type,
    });
  }
  return { images, taskId, batch, rowId, archivedAt: Number.parseInt(archivedAt, 36) };
}

/** `image/<extension>` of a key that has one (`image/png` for `b/r.png`). */
function impliedType(key: string): string | undefined {
  const dot = key.lastIndexOf(".");
  if (dot <= key.lastIndexOf("/") || dot === key.length - 1) return undefined;
  const ext = key.slice(dot + 1);
  // `.jpg` files are image/jpeg (there is no image/jpg): so a JPEG's type is implied too.
  return ext === "jpg" ? "image/jpeg" : `image/${ext}`;
}

/** The JSON value the previous version wrote for `entry` (byte for byte: same fields, same order). */
export function encodeJsonEntry(entry: ResultEntry): string {
  return JSON.stringify({
    t: entry.taskId,
    b: entry.batch,
    r: entry.rowId,
    a: entry.archivedAt,
    i: entry.images.map((image) => [image.key, image.bytes, image.sha256, image.contentType]),
  });
}

/** The entry of a JSON value, or undefined for a value this code cannot read (a miss). */
export function decodeJsonEntry(value: string): ResultEntry | undefined {
  try {
    const raw = JSON.parse(value) as { t?: unknown; b?: unknown; r?: unknown; a?: unknown; i?: unknown };
    if (typeof raw.t !== "string" || typeof raw.b !== "string" || typeof raw.r !== "string") return undefined;
    if (typeof raw.a !== "number" || !Array.isArray(raw.i) || raw.i.length === 0) return undefined;
    const images: ResultImage[] = [];
    for (const item of raw.i as unknown[]) {
      if (!Array.isArray(item)) return undefined;
      const [key, bytes, sha256, contentType] = item as unknown[];
      if (typeof key !== "string" || typeof bytes !== "number" || typeof contentType !== "string")
        return undefined;
      if (typeof sha256 !== "string" || !HEX_SHA256.test(sha256)) return undefined;
      images.push({ key, bytes, sha256, contentType });
    }
    return { images, taskId: raw.t, batch: raw.b, rowId: raw.r, archivedAt: raw.a };
  } catch {
    return undefined;
  }
}
