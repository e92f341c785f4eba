import type { GenerationParams } from "../kie/types.js";
import { canonicalJson } from "../manifest/index.js";
import { idParams } from "../manifest/model-rules.js";
import type { ProducerLedger } from "./types.js";

/** A row's request as enqueue compares two rows under one id: its prompt and its parameters. */
export interface RequestOf {
  prompt: string;
  /** Without the prompt (a ledger row's, a spooled row's). */
  params: object;
}

/**
 * The text two rows under one given id are compared by: the prompt and the parameters as a
 * derived id sees them (a local image by its sha256, not its path: a manifest's folder moved, or
 * mounted elsewhere, is the same request). Equal texts: the same request, a duplicate; else the
 * later row's id conflicts with the held one.
 */
function requestText({ prompt, params }: RequestOf): string {
  return `${prompt}\u0000${canonicalJson(idParams(params as unknown as GenerationParams))}`;
}

function sameRequest(a: RequestOf, b: RequestOf): boolean {
  return a.prompt === b.prompt && requestText(a) === requestText(b);
}

/**
 * Rows whose given id the batch holds (the enqueue's write: chunk-writer.ts; its dry run and
 * `--strict`: existing-rows.ts), read back in one call: for each, the held row's line when it asks
 * another request (the row's id conflicts), else undefined (the same request, or purged
 * meanwhile). A failed read rejects: the caller says what that means for it.
 */
export async function heldConflicts(
  ledger: Pick<ProducerLedger, "getRows">,
  batch: string,
  rows: readonly (RequestOf & { id: string })[],
): Promise<(number | undefined)[]> {
  if (rows.length === 0) return [];
  const held = await ledger.getRows(
    batch,
    rows.map((row) => row.id),
  );
  return rows.map((row, i) => {
    const stored = held[i];
    return stored === undefined || sameRequest(stored, row) ? undefined : stored.line;
  });
}
