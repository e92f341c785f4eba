/**
 * Redis bytes per row of a prefix, by `MEMORY USAGE`: the keys that exist once per row (ledger
 * row hash and body, task map entry, result index entry, BullMQ job hash and its side keys) or once
 * per 64 rows (a frozen page: settled archived rows compressed together, in place of their row
 * hashes and bodies) are sampled (reservoir over a SCAN) and their mean times their count is taken; the per-batch and per-queue structures (order and
 * state indexes, batch hash, queue lists and zsets, event stream) are measured whole. The sum
 * over the rows is divided by the rows: what one row costs, its share of the shared ones included.
 *
 * Classified by key shape, not by the ledger's key functions, so a new or renamed per-batch key
 * is still counted (as shared) and a layout change does not break the measurement.
 */
import type { Redis } from "ioredis";

export type PerRowKind = "ledger row" | "ledger body" | "frozen" | "task map" | "result index" | "job";
const PER_ROW: readonly PerRowKind[] = [
  "ledger row",
  "ledger body",
  "frozen",
  "task map",
  "result index",
  "job",
];
type SharedKind = "ledger shared" | "queue shared" | "queue events";

export interface RowBytes {
  rows: number;
  /** Total bytes per row: per-row keys plus the shared structures' share. */
  perRow: number;
  /** Bytes per row by part. */
  parts: Record<PerRowKind | SharedKind, number>;
  /** Keys seen, by part. */
  keys: Record<PerRowKind | SharedKind, number>;
}

/**
 * A key of prefix P by its hash tag (`{P}`: the deployment's, `{P:<batch>}`: a batch's ledger,
 * `{P:<stage>}`: a queue's, `{P:task:<id>}`: a task map entry) and what follows it.
 */
function classify(key: string, prefix: string): PerRowKind | SharedKind {
  const close = key.indexOf("}");
  const tag = key.slice(1 + prefix.length, close);
  const rest = key.slice(close + 1);
  if (tag.startsWith(":task:")) return "task map";
  // The deployment's result index (reuse across batches, 16 tags): one entry per archived request.
  if (tag.startsWith(":reuse:results:")) return "result index";
  if (rest.startsWith(":ledger:row:")) return "ledger row";
  // The row's prompt, params, metadata, images and error (ledger/row-body.ts), beside its hash.
  if (rest.startsWith(":ledger:body:")) return "ledger body";
  // A frozen page (ledger/frozen-page.ts): up to 64 settled archived rows, one string; a per-row
  // cost, since the batch has one per 64 rows.
  if (rest.startsWith(":ledger:frozen:")) return "frozen";
  if (rest.startsWith(":ledger")) return "ledger shared";
  // BullMQ: `{P:<queue>}:<queue>:<jobId>[:logs|:lock|...]`; job ids are `batch/row[/rN]`.
  if (/^:[^:]+:[^:]*\//.test(rest)) return "job";
  // BullMQ trims each queue's event stream (kie-batch's to ~100 entries, bull/queues.ts): a fixed
  // cost, apart so that a small run's figure can be read without it.
  if (/^:[^:]+:events$/.test(rest)) return "queue events";
  return "queue shared";
}

async function usage(redis: Redis, keys: readonly string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(i, i + 500)) pipeline.call("MEMORY", "USAGE", key, "SAMPLES", "0");
    for (const [error, bytes] of (await pipeline.exec()) ?? []) {
      if (!error && typeof bytes === "number") total += bytes;
    }
  }
  return total;
}

export async function measureRowBytes(
  redis: Redis,
  prefix: string,
  rows: number,
  sampleSize = 2_000,
): Promise<RowBytes> {
  const counts = {
    "ledger row": 0,
    "ledger body": 0,
    frozen: 0,
    "task map": 0,
    "result index": 0,
    job: 0,
    "ledger shared": 0,
    "queue shared": 0,
    "queue events": 0,
  };
  const samples: Record<PerRowKind, string[]> = {
    "ledger row": [],
    "ledger body": [],
    frozen: [],
    "task map": [],
    "result index": [],
    job: [],
  };
  const shared: Record<SharedKind, string[]> = {
    "ledger shared": [],
    "queue shared": [],
    "queue events": [],
  };
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `{${prefix}[}:]*`, "COUNT", 5000);
    cursor = next;
    for (const key of keys) {
      const kind = classify(key, prefix);
      const seen = ++counts[kind];
      if (kind === "ledger shared" || kind === "queue shared" || kind === "queue events") {
        shared[kind].push(key);
        continue;
      }
      // Reservoir sampling: every key of the kind has the same chance to be in the sample.
      const sample = samples[kind];
      if (sample.length < sampleSize) sample.push(key);
      else {
        const at = Math.floor(Math.random() * seen);
        if (at < sampleSize) sample[at] = key;
      }
    }
  } while (cursor !== "0");

  const parts = { ...counts };
  for (const kind of Object.keys(parts) as (keyof typeof parts)[]) parts[kind] = 0;
  for (const kind of PER_ROW) {
    const sample = samples[kind];
    if (sample.length === 0) continue;
    const mean = (await usage(redis, sample)) / sample.length;
    parts[kind] = (mean * counts[kind]) / rows;
  }
  for (const kind of ["ledger shared", "queue shared", "queue events"] as const) {
    parts[kind] = (await usage(redis, shared[kind])) / rows;
  }
  const perRow = Object.values(parts).reduce((a, b) => a + b, 0);
  return { rows, perRow, parts, keys: counts };
}

/** "ledger row 812 + frozen 300 + job 900 + ledger shared 40 + queue shared 80" */
export function describeParts(bytes: RowBytes): string {
  return Object.entries(bytes.parts)
    .filter(([, value]) => value > 0)
    .map(([name, value]) => `${name} ${Math.round(value)}`)
    .join(" + ");
}
