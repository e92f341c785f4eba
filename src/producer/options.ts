import {
  assertBatchName,
  defaultBatchName,
  ManifestOptionError,
  parseSetArguments,
} from "../manifest/index.js";
import { DEFAULT_PRIORITY, MAX_PRIORITY } from "./limits.js";
import type { EnqueueOptions } from "./types.js";

/** Every option checked once, before the file is read or Redis is asked. */
export interface ResolvedOptions {
  batch: string;
  sets: Record<string, string>;
  priority: number;
  budget: number | undefined;
}

/**
 * Checks the options of `enqueue`; throws ManifestOptionError naming the flag at fault. The batch
 * is `--batch` or else derived from the file name (stdin has none, so it needs `--batch`).
 */
export function resolveOptions(options: EnqueueOptions): ResolvedOptions {
  let batch: string;
  if (options.batch === undefined) batch = defaultBatchName(options.file);
  else {
    assertBatchName(options.batch);
    batch = options.batch;
  }
  const priority = options.priority ?? DEFAULT_PRIORITY;
  if (!Number.isInteger(priority) || priority < 1 || priority > MAX_PRIORITY) {
    throw new ManifestOptionError("--priority", priorityMessage(String(options.priority)));
  }
  const budget = options.budget;
  if (budget !== undefined && !(Number.isFinite(budget) && budget >= 0)) {
    throw new ManifestOptionError("--budget", budgetMessage(String(budget)));
  }
  return { batch, sets: parseSetArguments(options.sets ?? []), priority, budget };
}

/** `--priority N` as typed: a whole number from 1 (first) to 2,097,151 (last). */
export function parsePriority(text: string): number {
  const value = text.trim();
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_PRIORITY) {
    throw new ManifestOptionError("--priority", priorityMessage(text));
  }
  return n;
}

/** `--budget CREDITS` as typed: a plain decimal number of credits, 0 or more. */
export function parseBudgetCredits(text: string): number {
  const value = text.trim();
  if (!/^\d+(\.\d+)?$/.test(value)) throw new ManifestOptionError("--budget", budgetMessage(text));
  return Number(value);
}

function priorityMessage(found: string): string {
  return `--priority: expected a whole number from 1 (runs first) to ${MAX_PRIORITY} (runs last), found ${JSON.stringify(found)} (batches without --priority run at ${DEFAULT_PRIORITY})`;
}

function budgetMessage(found: string): string {
  return `--budget: expected a number of credits, 0 or more, found ${JSON.stringify(found)}`;
}
