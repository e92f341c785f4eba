import { LedgerError } from "./errors.js";
import { type BodyField, decodeBody, encodeBody } from "./row-body.js";
import {
  type ArchivedImage,
  type BatchSummary,
  INCREMENTABLE,
  type Incrementable,
  type NewRow,
  type RowRecord,
  type RowState,
  type RowUpdate,
  STATUSES,
  type Status,
} from "./types.js";

/** Redis hashes come back as `{field: value}` from HGETALL, or `[f, v, f, v]` from a script. */
export type FlatHash = Record<string, string>;

export function pairsToHash(pairs: unknown): FlatHash {
  const hash: FlatHash = {};
  if (!Array.isArray(pairs)) return hash;
  for (let i = 0; i + 1 < pairs.length; i += 2) hash[String(pairs[i])] = String(pairs[i + 1]);
  return hash;
}

const num = (value: string | undefined): number => (value === undefined || value === "" ? 0 : Number(value));
const optNum = (value: string | undefined): number | undefined =>
  value === undefined || value === "" ? undefined : Number(value);
const optStr = (value: string | undefined): string | undefined =>
  value === undefined || value === "" ? undefined : value;

function parseJson<T>(value: string | undefined, fallback: T): T {
  if (value === undefined || value === "") return fallback;
  return JSON.parse(value) as T;
}

export function isStatus(value: string): value is Status {
  return (STATUSES as readonly string[]).includes(value);
}

/**
 * The key each task was created with: `taskKey:<taskId>` (rows before 2026-12-06), or `k:<n>`
 * for the row's n-th task (`task:<taskId>` = n; scripts/includes/tasks.lua).
 */
function taskKeysOf(hash: FlatHash): Record<string, string> {
  const keys: Record<string, string> = {};
  const byOrdinal = new Map<string, string>();
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith("taskKey:")) keys[field.slice(8)] = value;
    else if (field.startsWith("task:")) byOrdinal.set(value, field.slice(5));
  }
  for (const [field, value] of Object.entries(hash)) {
    const task = field.startsWith("k:") ? byOrdinal.get(field.slice(2)) : undefined;
    if (task !== undefined) keys[task] = value;
  }
  return keys;
}

/**
 * A row's images are stored as one JSON array of `[key, location, bytes, sha256, contentType]`
 * tuples: no field names repeated per image, and the first image's location, size and checksum
 * not stored again beside it (the record's `location`, `bytes` and `sha256` are read from it).
 * Rows written before (an array of objects, and the three fields beside it) are read as they are.
 */
type StoredImage = [string, string, number, string, string];

function encodeImages(images: readonly ArchivedImage[]): string {
  return JSON.stringify(
    images.map((i): StoredImage => [i.key, i.location, i.bytes, i.sha256, i.contentType]),
  );
}

function decodeImages(value: string | undefined): ArchivedImage[] {
  return parseJson<(StoredImage | ArchivedImage)[]>(value, []).map((image) =>
    Array.isArray(image)
      ? { key: image[0], location: image[1], bytes: image[2], sha256: image[3], contentType: image[4] }
      : image,
  );
}

/**
 * The row's tasks, oldest first: a row written before 2026-12-06 holds them as one JSON array
 * (`taskIds`, appended to as before); a newer one as a field per task, `task:<taskId>` = its
 * ordinal from 1 (two task ids in one value would pass 64 bytes: see row-body.ts).
 */
export function taskIdsOf(hash: FlatHash): string[] {
  if (hash.taskIds !== undefined) return parseJson<string[]>(hash.taskIds, []);
  return Object.entries(hash)
    .filter(([field]) => field.startsWith("task:"))
    .sort(([, a], [, b]) => Number(a) - Number(b))
    .map(([field]) => field.slice(5));
}

/** The current task: `taskId` (rows before 2026-12-06, or set by hand), else the one whose ordinal is `task`. */
function currentTask(hash: FlatHash): string | undefined {
  const id = optStr(hash.taskId);
  if (id !== undefined || hash.task === undefined) return id;
  const field = Object.keys(hash).find((name) => name.startsWith("task:") && hash[name] === hash.task);
  return field?.slice(5);
}

function imagesOf(
  stored: string | undefined,
  hash: FlatHash,
): Pick<RowRecord, "images" | "location" | "bytes" | "sha256"> {
  const images = decodeImages(stored);
  const first = images[0];
  return {
    images,
    location: optStr(hash.location) ?? first?.location,
    bytes: optNum(hash.bytes) ?? first?.bytes,
    sha256: optStr(hash.sha256) ?? first?.sha256,
  };
}

/** The fields older versions stored beside `images` (the first image's): dropped when images change. */
const FIRST_IMAGE_FIELDS = ["location", "bytes", "sha256"] as const;

/**
 * A row's state from its hash alone (`Ledger.getRowState`): every field but the body's;
 * undefined for an empty hash (the row does not exist).
 */
export function parseRowState(batch: string, id: string, hash: FlatHash): RowState | undefined {
  if (hash.status === undefined) return undefined;
  const status = hash.status;
  if (!isStatus(status)) {
    throw new LedgerError("invalid_value", `row ${batch}/${id} has unknown status ${status}`);
  }
  return {
    batch,
    id,
    line: num(hash.line),
    seq: num(hash.seq),
    estimatedCredits: num(hash.estimatedCredits),
    status,
    taskId: currentTask(hash),
    taskIds: taskIdsOf(hash),
    taskKeys: taskKeysOf(hash),
    resubmits: num(hash.resubmits),
    uncertain: num(hash.uncertain),
    creditsReserved: num(hash.creditsReserved),
    creditsSpent: num(hash.creditsSpent),
    creditsUncertain: num(hash.creditsUncertain),
    createdAt: num(hash.createdAt),
    updatedAt: num(hash.updatedAt),
    submittedAt: optNum(hash.submittedAt),
    generatingAt: optNum(hash.generatingAt),
    completedAt: optNum(hash.completedAt),
    archivedAt: optNum(hash.archivedAt),
    waitingBudget: hash.waitingBudget === "1",
  };
}

/**
 * A row's hash and body (row-body.ts) as a typed record: its state (`parseRowState`) and the
 * body's fields; undefined for an empty hash (the row does not exist, whatever its body). A row
 * written before 2026-12-06 has no body: its hash holds the prompt, params, metadata, images,
 * error and reusedFrom, read from there.
 */
export function parseRow(
  batch: string,
  id: string,
  hash: FlatHash,
  body?: string | null,
): RowRecord | undefined {
  const state = parseRowState(batch, id, hash);
  if (state === undefined) return undefined;
  const decoded = body ? decodeBody(body) : undefined;
  const long = (field: BodyField): string | undefined => decoded?.fields[field] ?? hash[field];
  const reusedFrom = long("reusedFrom");
  return {
    ...state,
    prompt: decoded ? decoded.prompt : (hash.prompt ?? ""),
    params: decoded ? decoded.params : parseJson<Record<string, unknown>>(hash.params, {}),
    metadata: decoded ? decoded.metadata : parseJson<Record<string, string>>(hash.metadata, {}),
    ...imagesOf(long("images"), hash),
    error: optStr(long("error")),
    ...(reusedFrom ? { reusedFrom } : {}),
  };
}

/** A batch hash as a summary; undefined for an empty hash. */
export function parseBatch(batch: string, hash: FlatHash): BatchSummary | undefined {
  if (hash.createdAt === undefined) return undefined;
  return {
    batch,
    createdAt: num(hash.createdAt),
    updatedAt: num(hash.updatedAt),
    finishedAt: optNum(hash.finishedAt),
    budget: optNum(hash.budget),
    file: optStr(hash.file),
    total: num(hash.total),
    queued: num(hash.queued),
    submitted: num(hash.submitted),
    generating: num(hash.generating),
    archiving: num(hash.archiving),
    archived: num(hash.archived),
    failed: num(hash.failed),
    cancelled: num(hash.cancelled),
    creditsEstimated: num(hash.creditsEstimated),
    creditsReserved: num(hash.creditsReserved),
    creditsSpent: num(hash.creditsSpent),
    creditsUncertain: num(hash.creditsUncertain),
    uncertain: num(hash.uncertain),
    resubmits: num(hash.resubmits),
    waitingBudget: num(hash.waitingBudget),
    repaired: num(hash.repaired),
    ...(num(hash.reused) > 0 ? { reused: num(hash.reused) } : {}),
    ...(hash.noReuse === "1" ? { noReuse: true } : {}),
    ...(hash.cancelledAt === undefined ? {} : { cancelledAt: num(hash.cancelledAt) }),
    ...(hash.purging === undefined ? {} : { purging: num(hash.purging) }),
    ...(hash.fedSeq === undefined ? {} : { fedSeq: num(hash.fedSeq), held: num(hash.held) }),
    ...(hash.priority === undefined ? {} : { priority: num(hash.priority) }),
  };
}

export function finite(what: string, value: number): string {
  if (!Number.isFinite(value)) throw new LedgerError("invalid_value", `${what} must be a finite number`);
  return String(value);
}

/** The values `addRows` sends for one row, in the order scripts/add-rows.lua reads them. */
export function encodeNewRow(row: NewRow): string[] {
  return [
    row.id,
    finite("line", row.line),
    encodeBody(row),
    finite("estimatedCredits", row.estimatedCredits),
  ];
}

const UPDATABLE = new Set<string>([
  "taskId",
  "images",
  "location",
  "bytes",
  "sha256",
  "error",
  "submittedAt",
  "generatingAt",
  "completedAt",
  "archivedAt",
  "reusedFrom",
]);

/** Splits a `RowUpdate` into fields to write and fields to delete, all as flat strings. */
export function encodeUpdate(update: RowUpdate = {}): { set: [string, string][]; del: string[] } {
  const values: Record<string, unknown> = { ...update };
  const set: [string, string][] = [];
  const del: string[] = [];
  // New images replace what an older version kept beside them (read from `images` now).
  if (update.images !== undefined) {
    for (const field of FIRST_IMAGE_FIELDS) if (!(field in update)) del.push(field);
  }
  for (const [field, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (!UPDATABLE.has(field)) {
      throw new LedgerError("invalid_value", `a transition cannot set row field ${JSON.stringify(field)}`);
    }
    if (value === null) {
      del.push(field);
      // No current task: nor by its ordinal (`task`, rows since 2026-12-06).
      if (field === "taskId") del.push("task");
    } else if (field === "images") set.push([field, encodeImages(value as ArchivedImage[])]);
    else if (typeof value === "number") set.push([field, finite(field, value)]);
    else set.push([field, String(value)]);
  }
  return { set, del };
}

export function encodeIncrements(incr: Partial<Record<Incrementable, number>> = {}): [string, string][] {
  const out: [string, string][] = [];
  for (const [field, delta] of Object.entries(incr)) {
    if (delta === undefined || delta === 0) continue;
    if (!(INCREMENTABLE as readonly string[]).includes(field)) {
      throw new LedgerError("invalid_value", `a transition cannot increment ${JSON.stringify(field)}`);
    }
    if (!field.startsWith("credits") && !Number.isInteger(delta)) {
      throw new LedgerError("invalid_value", `${field} increments must be integers`);
    }
    out.push([field, finite(field, delta)]);
  }
  return out;
}
