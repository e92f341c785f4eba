/**
 * HTML built by a tagged template that escapes every interpolated value unless it is already
 * `SafeHtml`. Prompts, errors, batch names and pause reasons are user data: the only way to put
 * markup on a page is to write it in a template literal of this module's `html` tag, so a value
 * can never become markup by accident.
 */

/** Markup that is safe to emit as is: only `html` and `raw` make one. */
export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text safe in element content and in quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ENTITIES[ch]!);
}

/** What may be interpolated: arrays are joined, null, undefined and false render as nothing. */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.text;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map((item: HtmlValue) => render(item)).join("");
  return escapeHtml(String(value));
}

/** `html\`<td>${row.prompt}</td>\``: the literal parts are markup, every value is escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? "";
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? "");
  });
  return new SafeHtml(out);
}

/** Markup written in this codebase (a constant stylesheet, say); never pass data through it. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
