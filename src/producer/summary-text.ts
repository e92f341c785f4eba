import { CREDITS_UPPER_BOUND } from "../kie/types.js";
import { formatRowError } from "../manifest/index.js";
import { DEFAULT_PRIORITY } from "./limits.js";
import { formatCount } from "./progress.js";
import type { EnqueueSummary } from "./types.js";

/**
 * The summary for people and for programs. Pure functions of an `EnqueueSummary`, so they are
 * tested without Redis or a terminal.
 */

const LABEL_WIDTH = 20;

function field(label: string, value: string): string {
  return `${`${label}:`.padEnd(LABEL_WIDTH)}${value}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

function credits(n: number): string {
  return Number.isInteger(n) ? formatCount(n) : n.toFixed(2);
}

/** The human summary: counts, the first errors, warnings, money, and what to run next. */
export function formatSummaryText(s: EnqueueSummary): string {
  const lines: string[] = [];
  if (s.dryRun) lines.push("Dry run: nothing was written to Redis.");
  lines.push(field("Batch", `${s.batch}  (from ${sourceName(s)}, ${s.format})`));
  lines.push(field("Rows read", formatCount(s.total)));
  if (s.dryRun) {
    lines.push(field("Valid", formatCount(s.valid)));
    lines.push(
      field(
        "Already in batch",
        s.alreadyInBatch === undefined
          ? `not checked (${firstSentence(s.redisNote ?? "Redis was not asked")})`
          : formatCount(s.alreadyInBatch),
      ),
    );
    if (s.repeatedInFile !== undefined && s.repeatedInFile > 0) {
      lines.push(
        field(
          "Repeated in file",
          `${formatCount(s.repeatedInFile)}  (an earlier row of the file has the same id and asks the same: enqueued once)`,
        ),
      );
    }
    if (s.reusable !== undefined) {
      const why =
        s.reusable > 0
          ? "  (same request and seed as an image archived before: copied, 0 credits)"
          : "  (none matches an image archived before: same request and seed; a row without a seed, or whose input image is a URL, never does)";
      lines.push(field("Would be reused", `${formatCount(s.reusable)}${why}`));
    }
  } else {
    lines.push(field("Enqueued", formatCount(s.enqueued)));
    lines.push(
      field(
        "Duplicates",
        s.duplicates === 0
          ? "0"
          : `${formatCount(s.duplicates)}  (already in the batch or repeated in the file: never enqueued twice)`,
      ),
    );
  }
  if (s.duplicatesWithoutId > 0) {
    lines.push(
      `  ${plural(s.duplicatesWithoutId, "of them has", "of them have")} no id: a row without one is named by its prompt and`,
      "  parameters, so identical rows make one image. Add a `seed` or `id` column to make variations.",
    );
  }
  lines.push(field("Invalid", s.invalidRows === 0 ? "0" : plural(s.invalidRows, "row")));
  for (const error of s.errors) lines.push(`  ${formatRowError(error)}`);
  if (s.moreErrors > 0) lines.push(`  and ${plural(s.moreErrors, "more error")}`);
  if (s.warnings.length > 0) {
    lines.push(field("Warnings", String(s.warnings.length)));
    for (const warning of s.warnings) lines.push(`  ${warning}`);
  }
  lines.push(field("Estimated credits", estimateText(s)));
  if (s.batchTotal !== undefined && !s.dryRun) {
    lines.push(
      field(
        "Batch now holds",
        `${plural(s.batchTotal, "row")}, ${credits(s.batchEstimatedCredits ?? 0)} credits estimated`,
      ),
    );
  }
  if (s.budget !== undefined) {
    const note = s.budgetNotSet ? " (not set: the batch has no rows yet)" : s.dryRun ? " (would be set)" : "";
    lines.push(field("Budget", `${credits(s.budget)} credits${note}`));
  }
  if (s.priority !== DEFAULT_PRIORITY) lines.push(field("Priority", `${s.priority} (lower runs first)`));
  lines.push("", ...outcomeLines(s));
  return `${lines.join("\n")}\n`;
}

function estimateText(s: EnqueueSummary): string {
  const bound = `an upper bound: a row without an acceleration counts at its model's dearest price, ${CREDITS_UPPER_BOUND} for text-to-image`;
  if (s.dryRun) {
    const rows =
      (s.alreadyInBatch === undefined ? s.valid : s.valid - s.alreadyInBatch) -
      (s.reusable ?? 0) -
      (s.repeatedInFile ?? 0);
    return `${credits(s.estimatedCredits)} for ${plural(rows, "row")} (${bound})`;
  }
  return `${credits(s.estimatedCredits)} for the ${plural(s.enqueued, "row")} enqueued (${bound})`;
}

function outcomeLines(s: EnqueueSummary): string[] {
  if (s.strictRejected) {
    return [
      `--strict: ${plural(s.invalidRows, "invalid row")}, so nothing was enqueued. Fix ${s.invalidRows === 1 ? "it" : "them"} and run again.`,
    ];
  }
  if (s.total === 0) {
    return [`No row in ${sourceName(s)}${emptyHint(s.format)}: nothing was enqueued.`];
  }
  if (s.valid === 0) return ["No valid row: nothing was enqueued."];
  if (s.dryRun) return ["Next: run the same command without --dry-run to enqueue."];
  const commands: [string, string][] = [
    ["kie-batch worker", "run workers (they take jobs from every batch)"],
    [`kie-batch status ${s.batch} --watch`, "follow this batch"],
  ];
  const width = Math.max(...commands.map(([command]) => command.length)) + 3;
  return ["Next:", ...commands.map(([command, what]) => `  ${command.padEnd(width)}${what}`)];
}

/** The manifest as messages name it: its path, or "stdin". */
function sourceName(s: EnqueueSummary): string {
  return s.file === "-" ? "stdin" : s.file;
}

/** What an empty file of `format` holds, for "No row in FILE (...)". */
function emptyHint(format: EnqueueSummary["format"]): string {
  if (format === "csv") return " (only its header)";
  if (format === "json") return " (an empty list)";
  return " (no line with a row)";
}

/** "Redis is not answering at URL (reason). Start one..." -> its first sentence. */
function firstSentence(text: string): string {
  const end = /\.\s+(?=[A-Z])/.exec(text);
  return end === null ? text.replace(/\.$/, "") : text.slice(0, end.index);
}

/**
 * The `--json` summary: `batch, total, enqueued, duplicates, invalid[{line, error}], warnings,
 * estimatedCredits`, then extra fields. `invalid` lists the first errors (`moreInvalid` counts
 * the rest); `total` is every row read.
 */
export function summaryJson(s: EnqueueSummary): Record<string, unknown> {
  return {
    batch: s.batch,
    total: s.total,
    enqueued: s.enqueued,
    duplicates: s.duplicates,
    invalid: s.errors.map((error) => ({
      line: error.line,
      ...(error.column === undefined ? {} : { column: error.column }),
      error: `${error.field}: ${error.message}`,
    })),
    warnings: s.warnings,
    estimatedCredits: s.estimatedCredits,
    valid: s.valid,
    invalidRows: s.invalidRows,
    moreInvalid: s.moreErrors,
    duplicatesWithoutId: s.duplicatesWithoutId,
    idConflicts: s.idConflicts,
    dryRun: s.dryRun,
    ...(s.dryRun ? { alreadyInBatch: s.alreadyInBatch ?? null } : {}),
    ...(s.dryRun && s.reusable !== undefined ? { reusable: s.reusable } : {}),
    ...(s.dryRun ? { repeatedInFile: s.repeatedInFile ?? 0 } : {}),
    ...(s.redisNote === undefined ? {} : { redisNote: s.redisNote }),
    ...(s.budget === undefined ? {} : { budget: s.budget, budgetSet: !s.dryRun && !s.budgetNotSet }),
    priority: s.priority,
    strictRejected: s.strictRejected,
    file: s.file,
    format: s.format,
  };
}
