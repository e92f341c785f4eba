import { hash } from "node:crypto";
import { deriveRowId, type ManifestRow } from "../manifest/index.js";
import { idParams } from "../manifest/model-rules.js";

/** What a row's id met earlier in the file. */
export type InFileOutcome = "first" | "repeat" | { conflictLine: number };

const HEX16 = /^[0-9a-f]{16}$/;

/** An id's 64-bit digest as two halves: a derived id (16 hex digits) is one already. */
function idDigest(id: string): [number, number] {
  if (HEX16.test(id)) return [Number.parseInt(id.slice(0, 8), 16), Number.parseInt(id.slice(8), 16)];
  const digest = hash("sha1", id, "buffer");
  return [digest.readUInt32BE(0), digest.readUInt32BE(4)];
}

/** The table's first size (slots, a power of two); it doubles when half full. */
const FIRST_SLOTS = 1 << 14;

/**
 * The ids met so far in the file, for the checks that run before anything is written (a dry run,
 * `--strict`: id-check.ts): a row whose id an earlier row of the file took is a duplicate (counted
 * once, not paid twice) when it asks the same thing, and an error when its id was given and it
 * asks another prompt or other parameters (the enqueue finds both through the ledger as it writes).
 *
 * Memory stays small at a million rows: the ids are not kept, only a 64-bit digest of each (a
 * derived id's own 16 hex digits, else SHA-1's first 8 bytes) with its first line and a 32-bit
 * digest of its request, in typed arrays: 16 bytes a slot, at most half the slots used (~32 MB per
 * million distinct ids). Two ids sharing a digest would read as one (a chance of about 3 in 100
 * million at a million ids), and a repeat asking another request would pass for the same one
 * about once in 4 billion: a check's answer, which the enqueue's own write (comparing the rows
 * themselves) never relies on.
 */
export class InFileIds {
  private slots = FIRST_SLOTS;
  private used = 0;
  /** Per slot: the id's digest (two halves), its first line (0: an empty slot), its request's digest. */
  private idHigh = new Uint32Array(FIRST_SLOTS);
  private idLow = new Uint32Array(FIRST_SLOTS);
  private lines = new Uint32Array(FIRST_SLOTS);
  private requests = new Uint32Array(FIRST_SLOTS);

  check(row: ManifestRow): InFileOutcome {
    const [high, low] = idDigest(row.id);
    // A derived id is the digest of its row's request (manifest/ids.ts): a given one's is made
    // the same way, so a given id and a derived one compare alike.
    const named = row.idGiven ? deriveRowId(row.params.prompt, idParams(row.params)) : row.id;
    const request = Number.parseInt(named.slice(0, 8), 16);
    const slot = this.find(high, low);
    if (this.lines[slot] === 0) {
      this.put(slot, high, low, row.line, request);
      return "first";
    }
    // As the enqueue: a row without an id is named by its request, so it is the held row's; a
    // given id is checked against what the held row asks.
    if (row.idGiven && this.requests[slot] !== request) return { conflictLine: this.lines[slot]! };
    return "repeat";
  }

  /** The slot holding this digest, or the empty slot where it goes (linear probing). */
  private find(high: number, low: number): number {
    const mask = this.slots - 1;
    for (let slot = (low ^ high) & mask; ; slot = (slot + 1) & mask) {
      if (this.lines[slot] === 0 || (this.idHigh[slot] === high && this.idLow[slot] === low)) return slot;
    }
  }

  private put(slot: number, high: number, low: number, line: number, request: number): void {
    this.idHigh[slot] = high;
    this.idLow[slot] = low;
    this.lines[slot] = line;
    this.requests[slot] = request;
    if (++this.used * 2 > this.slots) this.grow();
  }

  private grow(): void {
    const { idHigh, idLow, lines, requests } = this;
    this.slots *= 2;
    this.idHigh = new Uint32Array(this.slots);
    this.idLow = new Uint32Array(this.slots);
    this.lines = new Uint32Array(this.slots);
    this.requests = new Uint32Array(this.slots);
    for (let old = 0; old < idHigh.length; old++) {
      if (lines[old] === 0) continue;
      const high = idHigh[old]!;
      const low = idLow[old]!;
      const slot = this.find(high, low);
      this.idHigh[slot] = high;
      this.idLow[slot] = low;
      this.lines[slot] = lines[old]!;
      this.requests[slot] = requests[old]!;
    }
  }
}
