import { Transform } from "node:stream";

/**
 * A pass-through that counts the bytes going through it: for a store that streams a body and is
 * asked how many bytes it stored (`ArchivePutOptions.onStored`).
 */
export function byteCounter(): { through: Transform; bytes(): number } {
  let bytes = 0;
  const through = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  return { through, bytes: () => bytes };
}
