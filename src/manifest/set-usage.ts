/**
 * Which `--set` parameters the file's rows took. A value shared by every row is left out of a
 * row whose model does not take it (`applyModelRules`): right for a mixed file, but when no row
 * (or only some) takes it the user should hear so, not find out from the images.
 */

import { redactUrl } from "../core/redact-url.js";
import { canonicalParamName } from "./params.js";
import type { RowResult } from "./row.js";

interface Tally {
  /** As the user wrote it: `acceleration`, say. */
  spelling: string;
  value: string;
  /** Valid rows whose model took the parameter. */
  taken: number;
  /** The models of the valid rows that did not, in the order first seen. */
  notTakenBy: Set<string>;
}

/** Counts, over the valid rows, the `--set` parameters their models took; constant memory. */
export class SetUsage {
  private readonly tallies = new Map<string, Tally>();
  private valid = 0;
  private readonly models = new Set<string>();

  /** `sets` as `parseSetArguments` returns them (the user's spelling), already validated. */
  constructor(sets: Readonly<Record<string, string>>) {
    for (const [spelling, value] of Object.entries(sets)) {
      const name = canonicalParamName(spelling);
      if (name !== undefined) this.tallies.set(name, { spelling, value, taken: 0, notTakenBy: new Set() });
    }
  }

  /** Counts one validated row; invalid rows are not enqueued and count for nothing. */
  add(result: RowResult): void {
    if (!result.ok || this.tallies.size === 0) return;
    this.valid++;
    const model = result.row.params.model ?? "text-to-image";
    this.models.add(model);
    for (const [name, tally] of this.tallies) {
      if (result.notApplied?.includes(name)) tally.notTakenBy.add(model);
      else tally.taken++;
    }
  }

  /** One line per `--set` parameter some valid row's model did not take; none when all did. */
  warnings(): string[] {
    const lines: string[] = [];
    for (const [name, tally] of this.tallies) {
      const left = this.valid - tally.taken;
      if (left === 0) continue;
      // An image URL may carry a signature or token in its query: shown as every URL is.
      const value = name === "image_url" ? redactUrl(tally.value) : tally.value;
      const head = `--set ${tally.spelling}=${value}`;
      const quoted = JSON.stringify(tally.spelling);
      if (tally.taken === 0) {
        lines.push(
          `${head}: no row's model takes ${quoted} (models in this file: ${[...this.models].join(", ")}); it was not applied`,
        );
      } else {
        lines.push(
          `${head}: only ${count(tally.taken)} of ${rows(this.valid)} took it; ${quoted} does not apply to model ${[...tally.notTakenBy].join(", ")}, so it was not applied to the other ${rows(left)}`,
        );
      }
    }
    return lines;
  }
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

function rows(n: number): string {
  return `${count(n)} ${n === 1 ? "row" : "rows"}`;
}
