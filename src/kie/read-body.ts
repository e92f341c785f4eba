import type { Dispatcher } from "undici";
import type { AnswerContext } from "./answer.js";
import { KieError } from "./errors.js";
import type { Scrub } from "./secrets.js";

/** Reads a body as UTF-8 text, refusing (and destroying) one larger than `limit` bytes. */
export async function readText(
  body: Dispatcher.ResponseData["body"],
  limit: number,
  context: AnswerContext,
  scrub: Scrub,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > limit) {
      body.destroy();
      throw new KieError({
        code: "bad_response",
        retryable: true,
        maybeCreated: context.operation === "submit",
        endpoint: context.endpoint,
        message: scrub(`${context.endpoint}: answer larger than ${limit} bytes`),
      });
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
