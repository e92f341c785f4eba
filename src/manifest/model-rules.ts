/**
 * What each model asks of a row, checked once the row's parameters are merged with `--set` and
 * the file's defaults: image-to-image and edit need an input image (a URL, or a local file that
 * is read and named by its sha256) and KIE's market API; text-to-image takes no image; `strength`
 * is image-to-image's, and edit takes shorter prompts.
 */
import { type ApiFlavor, type GenerationParams, LIMITS, needsInputImage } from "../kie/types.js";
import type { ImageFiles } from "./image-file.js";
import type { FieldProblem } from "./params.js";

export interface ModelRulesContext {
  /** Checks local images (`image_path`); without it, `image_path` is refused. */
  images?: ImageFiles;
  /** The deployment's API flavour, when known: the seed's `qwen` endpoints only do text-to-image. */
  apiFlavor?: ApiFlavor;
  /**
   * Whether the row itself gives a field (not `--set` or the file's defaults). A field its model
   * does not take is refused when the row gives it, and left out when it comes from a value
   * shared by every row (a mixed manifest's `--set image_size=...`). @defaultValue every field
   */
  rowGives?: (field: string) => boolean;
}

/**
 * Returns the row's parameters as they will be stored (a local image resolved to its real path
 * and sha256; `model` left out for text-to-image, so those rows keep their ids), or its problems,
 * and the shared fields (not the row's own) its model does not take, which were left out.
 */
export function applyModelRules(
  params: GenerationParams,
  context: ModelRulesContext,
): { params: GenerationParams; problems: FieldProblem[]; notTaken: (keyof GenerationParams)[] } {
  const problems: FieldProblem[] = [];
  const dropped: (keyof GenerationParams)[] = [];
  const { model: given, ...rest } = params;
  const model = given ?? "text-to-image";
  const out: GenerationParams = model === "text-to-image" ? rest : { ...rest, model };
  const quoted = `model "${model}"`;

  const rowGives = context.rowGives ?? (() => true);
  // A field the model does not take: the row's own is an error, a shared one is not sent.
  const notTaken = (field: keyof GenerationParams, message: string) => {
    if (out[field] === undefined) return;
    if (rowGives(field)) problems.push({ field, message });
    else {
      delete out[field];
      dropped.push(field);
    }
  };
  if (model !== "image-to-image") {
    notTaken("strength", `strength applies only to model "image-to-image", not ${quoted}`);
  }
  if (!needsInputImage(model)) {
    for (const field of ["image_url", "image_path"] as const) {
      notTaken(field, `${quoted} takes no input image (set model to image-to-image or edit)`);
    }
    return { params: out, problems, notTaken: dropped };
  }

  if (context.apiFlavor === "qwen") {
    problems.push({
      field: "model",
      message: `${quoted} needs KIE's market API: set KIE_API_FLAVOR=jobs (this deployment speaks the seed's qwen endpoints, which only do text-to-image)`,
    });
  }
  if (model === "image-to-image") {
    notTaken("image_size", `image_size does not apply to ${quoted}`);
  }
  const promptLength = [...out.prompt].length;
  if (model === "edit" && promptLength > LIMITS.editPromptMaxChars) {
    problems.push({
      field: "prompt",
      message: `expected at most ${LIMITS.editPromptMaxChars} characters for ${quoted}, found ${promptLength}`,
    });
  }
  if (out.image_url !== undefined && out.image_path !== undefined) {
    problems.push({
      field: "image_path",
      message: `expected one of "image_url" and "image_path", found both`,
    });
  } else if (out.image_url === undefined && out.image_path === undefined) {
    problems.push({
      field: "image_url",
      message: `expected image_url or image_path for ${quoted}, found neither`,
    });
  } else if (out.image_path !== undefined) {
    const checked = context.images?.check(out.image_path) ?? {
      ok: false as const,
      message: "local images need a manifest file (not stdin): give image_url instead",
    };
    if (checked.ok) {
      out.image_path = checked.path;
      out.image_sha256 = checked.sha256;
    } else {
      problems.push({ field: "image_path", message: checked.message });
    }
  }
  return { params: out, problems, notTaken: dropped };
}

/**
 * The parameters a derived row id hashes: a local image by its sha256, not its path, so moving
 * the manifest's folder (or naming the same file twice) keeps the id.
 */
export function idParams(params: GenerationParams): GenerationParams {
  const { image_path: _path, ...rest } = params;
  return rest;
}
