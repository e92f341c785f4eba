/**
 * The first key a JSON object gives twice at its top level, in `text` that `JSON.parse` already
 * took (so it is valid JSON); undefined when there is none or `text` is not an object.
 * `JSON.parse` keeps the last value of a repeated key without a word: a JSONL line's reader asks
 * this instead, as the JSON reader's tokenizer does for a row of a `.json` manifest. One pass over
 * the characters, strings skipped with `indexOf`; a key is decoded only when it holds an escape.
 */
export function repeatedTopLevelKey(text: string): string | undefined {
  let depth = 0;
  /** The next string at depth 1 is a key (after `{` or a `,` of the top object). */
  let expectKey = false;
  let rootIsObject = false;
  const keys = new Set<string>();
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (expectKey && depth === 1) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      expectKey = false;
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === 0) {
        if (c !== OPEN_BRACE) return undefined;
        rootIsObject = true;
      }
      depth++;
      expectKey = c === OPEN_BRACE && depth === 1;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      expectKey = false;
    } else if (c === COMMA) {
      expectKey = depth === 1 && rootIsObject;
    }
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/** The index of the quote that closes the string opening at `start` (one not escaped). */
function stringEnd(text: string, start: number): number {
  let at = start + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote === -1) return text.length; // not valid JSON: JSON.parse refused it before
    let backslashes = 0;
    for (let k = quote - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return quote;
    at = quote + 1;
  }
}
