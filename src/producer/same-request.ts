import type { GenerationParams } from "../kie/types.js";
import { canonicalJson } from "../manifest/index.js";
import { idParams } from "../manifest/model-rules.js";

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

export function sameRequest(a: RequestOf, b: RequestOf): boolean {
  return a.prompt === b.prompt && requestText(a) === requestText(b);
}
