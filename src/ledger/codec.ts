import { LedgerError } from "./errors.js";
import {
  type ArchivedImage,
  type BatchSummary,
  INCREMENTABLE,
  type Incrementable,
  type NewRow,
  type RowRecord,
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

/** Row field holding the key a task was created with (one per task: no read-modify-write). */
export function taskKeyField(taskId: string): string {
  return `taskKey:${taskId}`;
}

function taskKeysOf(hash: FlatHash): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith("taskKey:")) keys[field.slice(8)] = value;
  }
  return keys;
}

/** A row hash as a typed record; undefined for an empty hash (the key does not exist). */
export function parseRow(batch: string, hash: FlatHash): RowRecord | undefined {
  if (hash.id === undefined || hash.status === undefined) return undefined;
  const status = hash.status;
  if (!isStatus(status)) {
    throw new LedgerError("invalid_value", `row ${batch}/${hash.id} has unknown status ${status}`);
  }
  return {
    batch,
    id: hash.id,
    line: num(hash.line),
    seq: num(hash.seq),
    prompt: hash.prompt ?? "",
    params: parseJson<Record<string, unknown>>(hash.params, {}),
    metadata: parseJson<Record<string, string>>(hash.metadata, {}),
    estimatedCredits: num(hash.estimatedCredits),
    status,
    taskId: optStr(hash.taskId),
    taskIds: parseJson<string[]>(hash.taskIds, []),
    taskKeys: taskKeysOf(hash),
    resubmits: num(hash.resubmits),
    uncertain: num(hash.uncertain),
    images: parseJson<ArchivedImage[]>(hash.images, []),
    location: optStr(hash.location),
    bytes: optNum(hash.bytes),
    sha256: optStr(hash.sha256),
    creditsReserved: num(hash.creditsReserved),
    creditsSpent: num(hash.creditsSpent),
    creditsUncertain: num(hash.creditsUncertain),
    error: optStr(hash.error),
    createdAt: num(hash.createdAt),
    updatedAt: num(hash.updatedAt),
    submittedAt: optNum(hash.submittedAt),
    generatingAt: optNum(hash.generatingAt),
    completedAt: optNum(hash.completedAt),
    archivedAt: optNum(hash.archivedAt),
    waitingBudget: hash.waitingBudget === "1",
    ...(hash.reusedFrom ? { reusedFrom: hash.reusedFrom } : {}),
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
    row.prompt,
    JSON.stringify(row.params),
    JSON.stringify(row.metadata),
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
  const images = update.images;
  if (images && images.length > 0) {
    const first = images[0]!;
    if (!("location" in update)) values.location = first.location;
    if (!("bytes" in update)) values.bytes = first.bytes;
    if (!("sha256" in update)) values.sha256 = first.sha256;
  }
  const set: [string, string][] = [];
  const del: string[] = [];
  for (const [field, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (!UPDATABLE.has(field)) {
      throw new LedgerError("invalid_value", `a transition cannot set row field ${JSON.stringify(field)}`);
    }
    if (value === null) del.push(field);
    else if (field === "images") set.push([field, JSON.stringify(value)]);
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
