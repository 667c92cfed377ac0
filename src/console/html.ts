/**
 * HTML built with one tagged template that escapes every interpolated value unless it is already `Html` (the
 * result of another `html` template). No string from a request, the database or a transcript can become markup:
 * argv, reasons, comments and names are always text. Arrays are joined; null/undefined/false render as nothing.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

/** Escapes the five characters that matter in element content and in quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/**
 * JSON for a `<script type="application/json">` data island (never executed: the CSP allows no inline script).
 * `<`, `>`, `&` and the JavaScript line separators are escaped so no content can close the element.
 */
export function jsonIsland(id: string, data: unknown): Html {
  const json = JSON.stringify(data).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return new Html(`<script type="application/json" id="${escapeHtml(id)}">${json}</script>`);
}

/**
 * Text as a person should see it: control characters (C0 except tab and newline, DEL, C1 — terminal escape
 * sequences start with them) become visible `\xNN` / `\u{…}` escapes, so nothing caller-controlled can move
 * a cursor, set a title or hide part of a line in any view of it (also copied into a terminal).
 */
export function visibleText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}
