import type { GenerationParams, SubmitRequest } from "../kie/types.js";
import type { RowRecord } from "../ledger/types.js";

/**
 * A row's create request: its parameters and prompt, the input image's URL (an uploaded local file's,
 * or the row's own), and in webhook mode the callback URL naming the job (`<callbackUrl>/<key>`).
 */
export function requestOf(
  row: RowRecord,
  key: string,
  settings: { callbackUrl?: string | undefined },
  imageUrl?: string,
): SubmitRequest {
  const params = row.params as unknown as GenerationParams;
  const request: SubmitRequest = { ...params, prompt: row.prompt };
  if (imageUrl !== undefined) request.image_url = imageUrl;
  if (settings.callbackUrl) request.callBackUrl = `${settings.callbackUrl}/${key}`;
  return request;
}
