/**
 * Deterministic JSON: the same value always serialises to the same bytes, so a signature or a hash over it can
 * be re-checked by anyone who parses and re-serialises it. The one canonical form guard-aws hashes and signs
 * with (approval bindings, transcript signatures, the audit chain).
 *
 * Follows RFC 8785 (JSON Canonicalization Scheme): object members sorted by their names' UTF-16 code units
 * (§3.2.3), no whitespace (§3.2.1), strings escaped as ECMAScript's JSON.stringify does (§3.2.2.2), numbers in
 * ECMAScript's shortest round-trip form (§3.2.2.3). Properties whose value is `undefined` are left out and
 * `undefined` array slots are written as `null`, as JSON.stringify does; anything JSON cannot represent (NaN,
 * Infinity, bigint, functions, symbols, class instances, cycles) is refused rather than silently changed — a hash
 * must never drop part of what it covers.
 *
 * Bytes are not JSON. With `{ bytes: 'tagged' }` a Uint8Array (or Buffer) is written as `{"$bytes":"<base64>"}`,
 * so a payload never collides with a string of the same text; by default bytes are refused like any other
 * non-plain object. Likewise a Date is refused unless `{ dates: 'iso' }` writes it as its toISOString() text.
 *
 * The approval binding hash uses both options (`bytes: 'tagged', dates: 'iso'`): a `--cli-input-yaml` document
 * can carry `!!binary` and `!!timestamp` values, and hashes of approvals already stored were computed that way.
 */
export interface CanonicalJsonOptions {
  /** How to write a Uint8Array: refuse it (default) or write `{"$bytes":"<base64>"}`. */
  bytes?: 'reject' | 'tagged';
  /** How to write a Date: refuse it (default) or write its ISO-8601 string (as JSON.stringify would). */
  dates?: 'reject' | 'iso';
}

interface Mode {
  taggedBytes: boolean;
  isoDates: boolean;
}

export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  const out: string[] = [];
  write(value, out, '$', { taggedBytes: options.bytes === 'tagged', isoDates: options.dates === 'iso' }, new Set());
  return out.join('');
}

function write(v: unknown, out: string[], path: string, mode: Mode, open: Set<object>): void {
  if (v === null) {
    out.push('null');
    return;
  }
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonical JSON: ${path} is not a finite number`);
      // ECMAScript Number-to-String is exactly RFC 8785's number format; -0 serialises as 0.
      out.push(Object.is(v, -0) ? '0' : String(v));
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON: ${path} has type ${typeof v}, which JSON cannot represent`);
  }
  if (mode.taggedBytes && v instanceof Uint8Array) {
    out.push('{"$bytes":', JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')), '}');
    return;
  }
  if (mode.isoDates && v instanceof Date) {
    // toISOString throws a RangeError for an invalid date: refused, like NaN.
    out.push(JSON.stringify(v.toISOString()));
    return;
  }
  // A cycle would otherwise recurse until the stack overflows; name where it closes instead.
  if (open.has(v)) throw new TypeError(`canonical JSON: ${path} refers back to an enclosing value (a cycle)`);
  open.add(v);
  try {
    if (Array.isArray(v)) {
      out.push('[');
      for (let i = 0; i < v.length; i++) {
        if (i) out.push(',');
        const item: unknown = v[i];
        // JSON.stringify writes null for undefined array slots; do the same so arrays keep their length.
        write(item === undefined ? null : item, out, `${path}[${i}]`, mode, open);
      }
      out.push(']');
      return;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'non-plain';
      throw new TypeError(`canonical JSON: ${path} is a ${name} object, not a plain object`);
    }
    const obj = v as Record<string, unknown>;
    // Default sort compares UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    out.push('{');
    keys.forEach((k, i) => {
      if (i) out.push(',');
      out.push(JSON.stringify(k), ':');
      write(obj[k], out, `${path}.${k}`, mode, open);
    });
    out.push('}');
  } finally {
    open.delete(v);
  }
}
