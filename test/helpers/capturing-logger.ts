import { Writable } from "node:stream";
import { createLogger } from "../../src/core/logger.js";

/** A pino logger at trace level whose JSON lines land in a string (`text()`). */
export function capturingLogger() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString("utf8"));
      callback();
    },
  });
  return { log: createLogger({ level: "trace", pretty: false, destination }), text: () => chunks.join("") };
}
