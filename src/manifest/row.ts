/**
 * Row validation: one RawRow in, a normalised ManifestRow (or every error of the row) out.
 *
 * Precedence of a parameter: the row's value, then `--set`, then the file's `defaults`, then
 * BUILT_IN_DEFAULTS (empty: what nobody gave is not sent, and the API applies its own default).
 * The row id, when the row gives none, hashes the trimmed prompt and those effective parameters.
 */

import { DEFAULT_PRICES, type PriceTable } from "../kie/prices.js";
import { type ApiFlavor, type GenerationParams, LIMITS } from "../kie/types.js";
import { ManifestOptionError, ManifestParseError, type RowError } from "./errors.js";
import { deriveRowId, estimateCredits } from "./ids.js";
import { ImageFiles } from "./image-file.js";
import { applyModelRules, idParams } from "./model-rules.js";
import { BUILT_IN_DEFAULTS, type FieldProblem, type ParamOverrides, parseParamLayer } from "./params.js";
import { misspellingWarning, suggestParameter } from "./suggest.js";
import { type RawRow, setOwn } from "./types.js";
import { isGiven, parseRowId, parseText, stringifyMetadata } from "./values.js";

/** A valid row, ready to become a job. */
export interface ManifestRow {
  /** The physical line where the row starts. */
  line: number;
  /** The row's `id`, or one derived from the prompt and effective parameters. */
  id: string;
  /** True if the row gave its id; false if it was derived (identical rows then share one id). */
  idGiven: boolean;
  /** What to send: the trimmed prompt and every parameter given by the row, `--set` or defaults. */
  params: GenerationParams;
  /** Every other non-empty field, as text: carried to the results and the archive's sidecar. */
  metadata: Record<string, string>;
  /** Credits this image is estimated to cost (an upper bound when no acceleration is given). */
  estimatedCredits: number;
}

export type RowResult =
  | {
      ok: true;
      row: ManifestRow;
      warnings: string[];
      /**
       * Shared parameters (from `--set` or the file's defaults) that the row's model does not
       * take, so they were left out of its `params`. Absent when there are none.
       */
      notApplied?: readonly string[];
    }
  | { ok: false; errors: RowError[]; warnings: string[] };

export interface RowContext {
  /** The file as the user named it, for messages. */
  file: string;
  /** `--set key=value` options, as given on the command line. @defaultValue {} */
  sets?: Readonly<Record<string, string>>;
  /** The file's `defaults` (`Manifest.defaults`). @defaultValue {} */
  defaults?: Readonly<Record<string, unknown>>;
  /** Line where the file's defaults start, for messages about them. */
  defaultsLine?: number;
  /** The manifest's folder: local images (`image_path`) are read relative to it, and only under it. */
  baseDir?: string;
  /** More folders local images may come from (`--allow-paths`). @defaultValue [] */
  allowPaths?: readonly string[];
  /** The deployment's API flavour, when known (rows of the market-only models are refused on `qwen`). */
  apiFlavor?: ApiFlavor;
  /** Prices per model and acceleration, for the estimate (and so the budget). @defaultValue DEFAULT_PRICES */
  prices?: PriceTable;
}

/**
 * Validates `--set` and the file's defaults once, and returns a function that validates rows.
 * Throws ManifestOptionError for a bad `--set`, ManifestParseError (code "defaults") for bad
 * defaults: both apply to every row, so neither is a row error.
 *
 * Warnings (a column that looks like a misspelt parameter) carry no line number, so a caller
 * can report each distinct warning once for the whole file.
 */
export function createRowValidator(context: RowContext): (raw: RawRow) => RowResult {
  const { file } = context;
  const sets = parseSharedLayer(context.sets ?? {}, (problems) => {
    const details = problems.map((p) => `--set ${p.field}: ${p.message}`).join("; ");
    return new ManifestOptionError("--set", details);
  });
  const defaults = parseSharedLayer(context.defaults ?? {}, (problems) => {
    const reason = problems.map((p) => `defaults.${p.field}: ${p.message}`).join("; ");
    const line = context.defaultsLine;
    return new ManifestParseError({
      code: "defaults",
      file,
      ...(line === undefined ? {} : { line }),
      reason,
    });
  });
  const shared: ParamOverrides = { ...BUILT_IN_DEFAULTS, ...defaults, ...sets };
  const modelContext = {
    ...(context.baseDir === undefined
      ? {}
      : { images: new ImageFiles({ baseDir: context.baseDir, allowPaths: context.allowPaths ?? [] }) }),
    ...(context.apiFlavor === undefined ? {} : { apiFlavor: context.apiFlavor }),
  };
  const prices = context.prices ?? DEFAULT_PRICES;
  // A row's own image replaces a shared one of the other kind (image_url vs image_path).
  const { image_url: sharedUrl, image_path: sharedPath, ...sharedWithoutImage } = shared;

  return (raw: RawRow): RowResult => {
    const warnings: string[] = [];
    const at = raw.column === undefined ? { line: raw.line } : { line: raw.line, column: raw.column };
    const toError = (problem: FieldProblem): RowError => ({ file, ...at, ...problem });
    if (raw.problem !== undefined) return { ok: false, errors: [toError(raw.problem)], warnings };

    const layer = parseParamLayer(raw.fields);
    const problems: FieldProblem[] = [...layer.problems];
    const { prompt: promptInput, id: idInput, ...others } = layer.rest;

    const prompt = parseText(promptInput, { max: LIMITS.promptMaxChars, required: true });
    if (!prompt.ok) {
      problems.push({
        field: "prompt",
        message: isGiven(promptInput) ? prompt.message : "expected a prompt, found none",
      });
    }
    const id = isGiven(idInput) ? parseRowId(idInput) : undefined;
    if (id !== undefined && !id.ok) problems.push({ field: "id", message: id.message });

    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(others)) {
      const warning = misspellingWarning(name);
      if (warning !== undefined) warnings.push(warning);
      if (!isGiven(value)) continue;
      const text = stringifyMetadata(value);
      if (text.ok) setOwn(metadata, name, text.value);
      else problems.push({ field: name, message: text.message });
    }

    if (problems.length > 0 || !prompt.ok || prompt.value === undefined || id?.ok === false) {
      return { ok: false, errors: sortByColumnOrder(problems, raw.fields).map(toError), warnings };
    }
    const rowGivesImage = layer.params.image_url !== undefined || layer.params.image_path !== undefined;
    const base: ParamOverrides = rowGivesImage
      ? sharedWithoutImage
      : {
          ...sharedWithoutImage,
          ...(sharedUrl === undefined ? {} : { image_url: sharedUrl }),
          ...(sharedPath === undefined ? {} : { image_path: sharedPath }),
        };
    const checked = applyModelRules(
      { prompt: prompt.value, ...base, ...layer.params },
      { ...modelContext, rowGives: (field) => Object.hasOwn(layer.params, field) },
    );
    if (checked.problems.length > 0) {
      return { ok: false, errors: sortByColumnOrder(checked.problems, raw.fields).map(toError), warnings };
    }
    const params = checked.params;
    const row: ManifestRow = {
      line: raw.line,
      id: id?.value ?? deriveRowId(prompt.value, idParams(params)),
      idGiven: id !== undefined,
      params,
      metadata,
      estimatedCredits: estimateCredits(params, prices),
    };
    return checked.notTaken.length === 0
      ? { ok: true, row, warnings }
      : { ok: true, row, warnings, notApplied: checked.notTaken };
  };
}

/** One-off validation; prefer `createRowValidator` for many rows (it checks `--set` and defaults once). */
export function validateRow(raw: RawRow, context: RowContext): RowResult {
  return createRowValidator(context)(raw);
}

/**
 * Splits `--set key=value` arguments into a record. Throws ManifestOptionError for an argument
 * without "=", or a key given twice. Values are checked later, by `createRowValidator`.
 */
export function parseSetArguments(args: readonly string[]): Record<string, string> {
  const sets: Record<string, string> = {};
  for (const arg of args) {
    const at = arg.indexOf("=");
    const key = at === -1 ? "" : arg.slice(0, at).trim();
    if (key === "")
      throw new ManifestOptionError("--set", `expected key=value, found ${JSON.stringify(arg)}`);
    if (Object.hasOwn(sets, key)) throw new ManifestOptionError("--set", `"${key}" is set twice`);
    setOwn(sets, key, arg.slice(at + 1));
  }
  return sets;
}

/** Validates a layer that applies to every row: only parameters are allowed in it. */
function parseSharedLayer(
  fields: Readonly<Record<string, unknown>>,
  toError: (problems: FieldProblem[]) => Error,
): ParamOverrides {
  const layer = parseParamLayer(fields);
  const problems = [...layer.problems];
  for (const name of Object.keys(layer.rest)) {
    if (name === "prompt" || name === "id") {
      problems.push({
        field: name,
        message: "expected a parameter, found a per-row field (give it in each row)",
      });
      continue;
    }
    const meant = suggestParameter(name);
    const hint = meant === undefined ? "" : ` (did you mean "${meant}"?)`;
    problems.push({ field: name, message: `expected a parameter name, found "${name}"${hint}` });
  }
  if (problems.length > 0) throw toError(problems);
  return layer.params;
}

/** Errors in the order of the row's fields, so they read left to right. */
function sortByColumnOrder(
  problems: FieldProblem[],
  fields: Readonly<Record<string, unknown>>,
): FieldProblem[] {
  const order = new Map(Object.keys(fields).map((name, i) => [name, i]));
  return [...problems].sort(
    (a, b) =>
      (order.get(a.field) ?? Number.MAX_SAFE_INTEGER) - (order.get(b.field) ?? Number.MAX_SAFE_INTEGER),
  );
}
