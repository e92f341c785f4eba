/**
 * Shared set-up of the operator-command tests: a unique prefix on the real Redis, a ledger and the
 * stage queues on it, rows driven into any state through `ledger.transition` (so the batch's
 * counters are the ledger's own), and an output stream that collects what a command prints.
 */
import { Writable } from "node:stream";
import type { Redis } from "ioredis";
import { QueueSet } from "../../src/bull/queues.js";
import {
  createLedger,
  type Ledger,
  type NewRow,
  type RowRecord,
  type Status,
} from "../../src/ledger/index.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

export class Collector extends Writable {
  private readonly chunks: string[] = [];
  isTTY?: boolean;
  columns?: number;

  constructor(options: { isTTY?: boolean; columns?: number } = {}) {
    super();
    if (options.isTTY !== undefined) this.isTTY = options.isTTY;
    if (options.columns !== undefined) this.columns = options.columns;
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }

  text(): string {
    return this.chunks.join("");
  }

  lines(): string[] {
    return this.text()
      .split("\n")
      .filter((line) => line !== "");
  }
}

export interface OpsFixture {
  prefix: string;
  redis: Redis;
  ledger: Ledger;
  queues: QueueSet;
  close(): Promise<void>;
}

/** A fresh prefix, ledger and queues; `close` removes every key of the prefix. */
export function opsFixture(options: { clock?: { now(): number } } = {}): OpsFixture {
  const prefix = uniquePrefix("ops");
  const redis = testRedis();
  const ledger = createLedger(redis, { prefix, ...(options.clock ? { clock: options.clock } : {}) });
  const queues = new QueueSet({ connection: redis, queuePrefix: prefix });
  return {
    prefix,
    redis,
    ledger,
    queues,
    async close() {
      await queues.close();
      await cleanupPrefix(redis, prefix);
      await redis.quit();
    },
  };
}

export function newRow(id: string, extra: Partial<NewRow> = {}): NewRow {
  return {
    id,
    line: 2,
    prompt: `prompt ${id}`,
    params: {},
    metadata: {},
    estimatedCredits: 8,
    ...extra,
  };
}

/** `r-01`, `r-02`, ... `r-<n>`: row ids in manifest order. */
export const rowIds = (n: number) =>
  Array.from({ length: n }, (_, i) => `r-${String(i + 1).padStart(2, "0")}`);

/**
 * Rows `r-01`... of 8 credits in batch "b" with `budget`, each asking for its reservation in
 * manifest order, as their submit jobs would: those past the budget park.
 */
export async function rowsAskingBudget(
  ledger: Pick<Ledger, "addRows" | "reserveBudget">,
  n: number,
  budget: number,
): Promise<void> {
  await ledger.addRows(
    "b",
    rowIds(n).map((id) => newRow(id)),
    { budget },
  );
  for (const id of rowIds(n)) await ledger.reserveBudget("b", id, 8);
}

/** What a row should look like when it gets there. */
export interface StateOptions {
  /** Record a task on the way (default: for every state past submit). */
  taskId?: string | null;
  completedAt?: number;
  error?: string;
  spent?: number;
}

/**
 * Walks a queued row to `to` the way the stages do: submitted (with a task), generating,
 * archiving (completedAt), archived (an image), failed or cancelled.
 */
export async function moveRow(
  ledger: Ledger,
  batch: string,
  id: string,
  to: Status,
  options: StateOptions = {},
): Promise<RowRecord> {
  const taskId = options.taskId === undefined ? `task-${id}` : options.taskId;
  const paths: Record<Status, Status[]> = {
    queued: [],
    submitted: ["submitted"],
    generating: ["submitted", "generating"],
    archiving: ["submitted", "generating", "archiving"],
    archived: ["submitted", "generating", "archiving", "archived"],
    failed: taskId === null ? ["failed"] : ["submitted", "generating", "failed"],
    cancelled: ["cancelled"],
  };
  const path = paths[to];
  for (const step of path) {
    const input: Parameters<Ledger["transition"]>[2] = { to: step };
    if (step === "submitted" && taskId !== null) {
      input.addTaskId = taskId;
      input.set = { submittedAt: 1_000 };
    }
    if (step === "archiving") input.set = { completedAt: options.completedAt ?? 2_000 };
    if (step === "archived") {
      input.set = {
        images: [
          {
            key: `${batch}/${id}.png`,
            location: `/archive/${batch}/${id}.png`,
            bytes: 1234,
            sha256: "a".repeat(64),
            contentType: "image/png",
          },
        ],
        archivedAt: 3_000,
      };
    }
    if (step === "failed") input.set = { error: options.error ?? `failed ${id}` };
    const result = await ledger.transition(batch, id, input);
    if (!result.ok) throw new Error(`could not move ${batch}/${id} to ${step}`);
  }
  if (options.spent !== undefined) await ledger.settleCredits(batch, id, options.spent);
  const row = await ledger.getRow(batch, id);
  if (!row) throw new Error(`row ${batch}/${id} vanished`);
  return row;
}
