/** One row of the bench table, and how the table and the JSON file are written. */

export interface Figure {
  /** Group that measured it (`--only NAME`). */
  group: string;
  figure: string;
  unit: string;
  measured: number | undefined;
  baseline?: number | undefined;
  /** measured ÷ baseline, or the figure itself when the goal is on the figure (see `goal`). */
  ratio?: number | undefined;
  /** Human text of the goal, e.g. "≤ 1,200 B", "≥ 0.5×"; "-" for figures kept for reference. */
  goal: string;
  /** Whether the goal is met; undefined for reference figures. */
  met?: boolean | undefined;
  note?: string;
}

export const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n)
    ? "-"
    : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Digits for a value: whole numbers for big ones, two decimals for small ones. */
export function auto(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "-";
  const magnitude = Math.abs(n);
  if (Number.isInteger(n)) return fmt(n);
  return fmt(n, magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2);
}

/** A goal on the figure itself: `at most` / `at least` `limit`. */
export function goalOn(
  value: number | undefined,
  op: "<=" | ">=" | "<" | "==",
  limit: number,
): boolean | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  switch (op) {
    case "<=":
      return value <= limit;
    case ">=":
      return value >= limit;
    case "<":
      return value < limit;
    case "==":
      return value === limit;
  }
}

export function ratioOf(measured: number | undefined, baseline: number | undefined): number | undefined {
  if (measured === undefined || baseline === undefined || baseline === 0) return undefined;
  return measured / baseline;
}

/** The table: figure | measured | baseline | ratio | goal | met? */
export function renderTable(figures: readonly Figure[]): string {
  const header = ["figure", "measured", "baseline", "ratio", "goal", "met?"];
  const rows = figures.map((f) => [
    f.figure,
    f.measured === undefined ? "-" : `${auto(f.measured)} ${f.unit}`.trim(),
    f.baseline === undefined ? "-" : `${auto(f.baseline)} ${f.unit}`.trim(),
    f.ratio === undefined ? "-" : `${fmt(f.ratio, 2)}×`,
    f.goal,
    f.met === undefined ? "-" : f.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
