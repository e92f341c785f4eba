import { ValueError } from "../core/errors.js";
import {
  checkCredits,
  checkPriority,
  DEFAULT_PRIORITY,
  parseCredits,
  parsePriority as readPriority,
} from "../core/values.js";
import {
  assertBatchName,
  defaultBatchName,
  ManifestOptionError,
  parseSetArguments,
} from "../manifest/index.js";
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
  const priority = asOptionError(() => checkPriority(options.priority ?? DEFAULT_PRIORITY));
  const given = options.budget;
  const budget = given === undefined ? undefined : asOptionError(() => checkCredits(given));
  return { batch, sets: parseSetArguments(options.sets ?? []), priority, budget };
}

/** `--priority N` as typed (core/values reads it), refused as the producer's option error. */
export function parsePriority(text: string): number {
  return asOptionError(() => readPriority(text));
}

/** `--budget CREDITS` as typed (core/values reads it), refused as the producer's option error. */
export function parseBudgetCredits(text: string): number {
  return asOptionError(() => parseCredits(text));
}

/** Every bad option of `enqueue` is a ManifestOptionError, as the manifest's own options are. */
function asOptionError<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ValueError && !(error instanceof ManifestOptionError)) {
      throw new ManifestOptionError(error.option, error.message);
    }
    throw error;
  }
}
